"""The registry of event types: (event type, schema version) → payload model, owning department, upcasters.

Only the **latest** version of each type has a payload class. Older versions stay readable through
*upcasters*, functions that turn a version-N payload (as a JSON-ready dict) into a version-N+1 payload, in
the style of pyeventsourcing: ``parse_event`` runs the chain so that consumers always receive the latest
version, and projections never see an old shape. A version is readable only if the chain from it to the
latest version is complete; anything else is rejected, never guessed.

Publishing a new version of a type, say ``birth.registered`` v2:

1. change ``BirthRegistered`` and set ``schema_version: ClassVar[int] = 2``;
2. ``register_upcaster("birth.registered", 1, fn)`` with ``fn`` turning a v1 payload into a v2 payload
   (``same_payload`` if v2 only adds optional fields or widens an enum);
3. ``renkou schemas export`` writes ``v2.json`` next to the published ``v1.json``, and
   ``renkou schemas check`` proves that the example v1 event in ``v1.json`` still parses.

The module-level functions act on the global ``REGISTRY``; tests that need different types work on
``REGISTRY.copy()`` and leave the global one alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, TypeVar, Union, cast

from pydantic import Discriminator, Field, Tag, TypeAdapter, WithJsonSchema, create_model

from events import education, health, public_security, social_security
from events.envelope import SOURCE_CLASSES, Event, OutdatedEvent, Payload
from events.fields import DEPARTMENTS, Department

__all__ = [
    "REGISTRY",
    "EventRegistry",
    "UnknownEventTypeError",
    "Upcaster",
    "department_of",
    "event_class",
    "register_upcaster",
    "same_payload",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the JSON-ready payload of version N into the payload of version N+1."""

P = TypeVar("P", bound=type[Payload])


class UnknownEventTypeError(KeyError):
    """The event type is not in the catalogue."""


def same_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The upcaster for a version that only added optional fields or widened an enum: nothing to change."""
    return payload


def _version_field(version: int) -> Any:
    # An int pinned to one value rather than a Literal: a Literal[1] would let JSON ``true`` and ``1.0``
    # through (they compare equal to 1), and the check stays inside pydantic-core.
    return Annotated[
        int,
        Field(strict=True, ge=version, le=version, description="Version of the payload schema."),
        WithJsonSchema({"type": "integer", "const": version}),
    ]


def _version_tag(value: Any) -> str | None:
    version = value.get("schema_version") if isinstance(value, dict) else getattr(value, "schema_version", None)
    return str(version) if type(version) is int else None


class EventRegistry:
    """A catalogue of event types. See the module docstring for how versions and upcasters fit together."""

    def __init__(self, payloads: Iterable[type[Payload]] = ()) -> None:
        self._latest: dict[str, type[Payload]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._event_classes: dict[tuple[str, int], type[Event[Any]]] = {}
        self._adapter: TypeAdapter[Any] | None = None
        for payload in payloads:
            self.register(payload)

    # -- building -------------------------------------------------------------------------------------------

    def register(self, payload_cls: P, *, replace: bool = False) -> P:
        """Add a payload class (usable as a decorator).

        A class with a higher ``schema_version`` than the one registered for its type becomes the new latest
        version only with ``replace=True``; the old version then needs an upcaster to stay readable.
        """
        event_type = getattr(payload_cls, "event_type", None)
        department = getattr(payload_cls, "department", None)
        version = getattr(payload_cls, "schema_version", None)
        if not isinstance(event_type, str) or not event_type:
            raise TypeError(f"{payload_cls.__name__} has no event_type")
        if department not in DEPARTMENTS:
            raise TypeError(f"{payload_cls.__name__}.department must be one of {DEPARTMENTS}, got {department!r}")
        if type(version) is not int or version < 1:
            raise TypeError(f"{payload_cls.__name__}.schema_version must be an integer ≥ 1, got {version!r}")
        current = self._latest.get(event_type)
        if current is payload_cls:
            return payload_cls
        if current is not None:
            if not replace:
                raise ValueError(f"{event_type!r} is already registered ({current.__name__})")
            if version <= current.schema_version:
                raise ValueError(
                    f"{event_type!r} v{version} does not supersede the registered v{current.schema_version}"
                )
            if department != current.department:
                raise ValueError(f"{event_type!r} belongs to {current.department}, not {department}")
        self._latest[event_type] = payload_cls
        self._adapter = None
        return payload_cls

    def register_upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> Upcaster:
        """Register ``fn`` turning a ``from_version`` payload of ``event_type`` into the next version's."""
        latest = self.latest_version(event_type)
        if type(from_version) is not int or not 1 <= from_version < latest:
            raise ValueError(
                f"an upcaster for {event_type!r} must start from a version between 1 and {latest - 1}, "
                f"got {from_version!r}"
            )
        self._upcasters[(event_type, from_version)] = fn
        self._adapter = None
        return fn

    def copy(self) -> EventRegistry:
        """An independent registry with the same types and upcasters (for tests and tools)."""
        other = EventRegistry()
        other._latest = dict(self._latest)
        other._upcasters = dict(self._upcasters)
        other._event_classes = dict(self._event_classes)
        return other

    # -- reading --------------------------------------------------------------------------------------------

    @property
    def event_types(self) -> Mapping[str, type[Payload]]:
        """Event type → latest payload class (read-only, live)."""
        return MappingProxyType(self._latest)

    def payload_class(self, event_type: str) -> type[Payload]:
        """The latest payload class of ``event_type``; raises ``UnknownEventTypeError``."""
        try:
            return self._latest[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type) from None

    def department_of(self, event_type: str) -> Department:
        """The department that owns (and alone may write) ``event_type``."""
        return self.payload_class(event_type).department

    def latest_version(self, event_type: str) -> int:
        """The schema version consumers receive for ``event_type``."""
        return self.payload_class(event_type).schema_version

    def upcaster(self, event_type: str, from_version: int) -> Upcaster | None:
        """The upcaster from ``from_version`` to the next version, if registered."""
        return self._upcasters.get((event_type, from_version))

    def readable_versions(self, event_type: str) -> tuple[int, ...]:
        """Versions ``parse_event`` accepts: the latest, and each older one with a complete upcaster chain."""
        latest = self.latest_version(event_type)
        versions = [latest]
        for version in range(latest - 1, 0, -1):
            if (event_type, version) not in self._upcasters:
                break
            versions.append(version)
        return tuple(sorted(versions))

    def upcast(self, event_type: str, from_version: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run the upcaster chain from ``from_version`` to the latest version on a JSON-ready payload."""
        latest = self.latest_version(event_type)
        result = copy.deepcopy(dict(payload))
        for version in range(from_version, latest):
            fn = self._upcasters.get((event_type, version))
            if fn is None:
                raise LookupError(f"no upcaster for {event_type!r} from v{version} to v{version + 1}")
            result = fn(result)
            if not isinstance(result, dict):
                raise TypeError(f"the upcaster of {event_type!r} v{version} returned {type(result).__name__}")
        return result

    def event_class(self, event_type: str) -> type[Event[Any]]:
        """The concrete envelope class of the latest version of ``event_type``.

        ``event_type``, ``schema_version`` and ``source.department`` are pinned to their only valid values in
        it, ``payload`` is the payload class.
        """
        payload_cls = self.payload_class(event_type)
        key = (event_type, payload_cls.schema_version)
        cls = self._event_classes.get(key)
        if cls is None or cls.model_fields["payload"].annotation is not payload_cls:
            cls = cast(
                "type[Event[Any]]",
                create_model(
                    f"{payload_cls.__name__}Event",
                    __base__=Event[payload_cls],  # type: ignore[valid-type]
                    __module__=Event.__module__,
                    __doc__=f"A ``{event_type}`` v{payload_cls.schema_version} event.",
                    **self._pinned_fields(payload_cls.department, event_type, payload_cls.schema_version),
                    payload=(payload_cls, ...),
                ),
            )
            self._event_classes[key] = cls
        return cls

    def _pinned_fields(self, department: Department, event_type: str, version: int) -> dict[str, Any]:
        return {
            "event_type": (cast(Any, Literal)[event_type], Field(description="The event type.")),
            "schema_version": (_version_field(version), ...),
            "source": (SOURCE_CLASSES[department], ...),
        }

    def _outdated_class(self, event_type: str, version: int) -> type[OutdatedEvent]:
        department = self.department_of(event_type)
        return cast(
            "type[OutdatedEvent]",
            create_model(
                f"Outdated_{event_type.replace('.', '_')}_v{version}",
                __base__=OutdatedEvent,
                __module__=OutdatedEvent.__module__,
                **self._pinned_fields(department, event_type, version),
            ),
        )

    def adapter(self) -> TypeAdapter[Any]:
        """The one validator for every readable (event type, version): built once, rebuilt after changes.

        A union discriminated on ``event_type`` (in pydantic-core, no Python call), nested for types with
        several readable versions in a union discriminated on ``schema_version``. Older versions validate as
        ``OutdatedEvent`` (envelope checked, payload kept as a dict) for ``parse_event`` to upcast.
        """
        if self._adapter is None:
            choices: list[Any] = []
            for event_type in sorted(self._latest):
                versions = self.readable_versions(event_type)
                if len(versions) == 1:
                    choices.append(self.event_class(event_type))
                    continue
                latest = versions[-1]
                by_version: list[Any] = [Annotated[self.event_class(event_type), Tag(str(latest))]]
                by_version += [Annotated[self._outdated_class(event_type, v), Tag(str(v))] for v in versions[:-1]]
                choices.append(Annotated[Union[tuple(by_version)], Discriminator(_version_tag)])  # noqa: UP007
            if not choices:
                raise LookupError("the registry has no event types")
            union: Any = Union[tuple(choices)] if len(choices) > 1 else choices[0]  # noqa: UP007
            self._adapter = TypeAdapter(Annotated[union, Field(discriminator="event_type")])
        return self._adapter


REGISTRY: Final = EventRegistry(
    (*public_security.PAYLOADS, *education.PAYLOADS, *social_security.PAYLOADS, *health.PAYLOADS)
)
"""The catalogue of CONTRACT §4, as this code base knows it."""

# Versions that only added optional fields: an older event is read as the newest unchanged (``renkou schemas
# check`` holds them to that: no field removed, none newly required, no enum narrowed, no bound tightened).
for _event_type, _from in (("hukou.registered", 1), ("residence.registered", 1)):
    REGISTRY.register_upcaster(_event_type, _from, same_payload)


def department_of(event_type: str) -> Department:
    """The department that owns ``event_type`` in the global registry; raises ``UnknownEventTypeError``."""
    return REGISTRY.department_of(event_type)


def event_class(event_type: str) -> type[Event[Any]]:
    """The concrete envelope class of the latest version of ``event_type`` in the global registry."""
    return REGISTRY.event_class(event_type)


def register_upcaster(event_type: str, from_version: int, fn: Upcaster) -> Upcaster:
    """Register an upcaster in the global registry (see ``EventRegistry.register_upcaster``)."""
    return REGISTRY.register_upcaster(event_type, from_version, fn)
