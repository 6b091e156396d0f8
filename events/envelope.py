"""The event envelope (CONTRACT §2) and the base class of every payload.

An event on the wire is one JSON object: envelope fields plus a ``payload`` whose shape depends on
``event_type`` and ``schema_version``. In Python it is an ``Event[P]``: a frozen model whose ``payload`` is
the typed payload class ``P``. The registry (``events.registry``) derives one concrete ``Event`` subclass
per (event type, version) in which ``event_type``, ``schema_version`` and ``source.department`` are pinned,
so a single Pydantic validation checks the whole record, including the rule that a department writes only
its own event types.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Final, Generic, Literal, Self, TypeVar, get_args, get_origin
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from events.bounds import BIRTH_BOUND, SHORT_TEXT_MAX_CHARS, business_date
from events.citizen_id import CitizenId, RegionCode, born_after
from events.fields import DEPARTMENTS, TEXT_PATTERN, Department, Timestamp

__all__ = [
    "ACCESS_LOG_TOPIC",
    "ANCHOR_TOPIC",
    "DEAD_LETTER_TOPIC",
    "RESIDENT_VIEW_TOPIC",
    "EducationSource",
    "Event",
    "EventEnvelope",
    "HealthSource",
    "Payload",
    "PayloadT",
    "PublicSecuritySource",
    "SocialSecuritySource",
    "Source",
    "consumer_view_topic",
    "department_topics",
    "topic_for",
]

DEAD_LETTER_TOPIC: Final = "population.dead_letter.v1"
RESIDENT_VIEW_TOPIC: Final = "population.resident_view.v1"
ANCHOR_TOPIC: Final = "population.audit_anchor.v1"
"""Signed anchors of the archive's and the access log's hash chains (CONTRACT §10; ``services.anchor``)."""
ACCESS_LOG_TOPIC: Final = "population.access_log.v1"
"""Reads' access-log entries on their way to the chains in PostgreSQL, when the query API reads from a standby
(CONTRACT §13; ``services.access_log.topic``): one record per entry, keyed by citizen ID."""

# strict: JSON ``true`` is not 1, ``"1"`` is not 1; frozen: an event is a fact, it never changes.
_CONFIG: Final = ConfigDict(frozen=True, extra="forbid", strict=True)


def consumer_view_topic(consumer: str) -> str:
    """A consumer's own view topic (CONTRACT §11): ``population.resident_view.v1.<consumer>``."""
    return f"{RESIDENT_VIEW_TOPIC}.{consumer}"


def topic_for(department: Department, namespace: str = "") -> str:
    """The Kafka topic a department writes to: ``population.<department>.v1`` (after ``namespace``, a prefix that
    keeps test runs and demos apart on one cluster)."""
    return f"{namespace}population.{department}.v1"


def department_topics(namespace: str = "") -> list[str]:
    """The four department topics, in the contract's order (``DEPARTMENTS``), after ``namespace``."""
    return [topic_for(department, namespace) for department in DEPARTMENTS]


class Payload(BaseModel):
    """Base class of every event payload.

    Each subclass names its ``event_type``, owning ``department`` and ``schema_version`` as class variables;
    the registry reads them. Unknown fields are rejected, instances are immutable.
    """

    model_config = _CONFIG

    event_type: ClassVar[str]
    department: ClassVar[Department]
    schema_version: ClassVar[int] = 1
    birth_fields: ClassVar[tuple[str, ...]] = ()
    """The fields that carry a birth date (``BirthDay``, ``CitizenId``): found from the types, never listed."""
    other_number_fields: ClassVar[tuple[str, ...]] = ()
    """Fields naming another citizen ID of the same person (§12): never the event's own ``citizen_id``."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.birth_fields = tuple(
            name for name, info in cls.model_fields.items() if BIRTH_BOUND in info.metadata or _marked(info.annotation)
        )


PayloadT = TypeVar("PayloadT", bound=Payload, covariant=True)

SystemName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SHORT_TEXT_MAX_CHARS, pattern=TEXT_PATTERN),
]


def _marked(annotation: Any) -> bool:
    """Whether a field's type carries ``BIRTH_BOUND`` anywhere (``CitizenId | None`` hides it in a union)."""
    if get_origin(annotation) is Annotated:
        return BIRTH_BOUND in annotation.__metadata__ or _marked(get_args(annotation)[0])
    return any(_marked(arg) for arg in get_args(annotation))


class Source(BaseModel):
    """Who recorded the event: the department, its system, and the division the record belongs to."""

    model_config = _CONFIG

    department: Department
    system: SystemName
    region_code: RegionCode


# One subclass per department: the concrete event classes use the one of the owning department, which turns
# "a department writes only its own event types" into a plain literal check inside the single validation.
class PublicSecuritySource(Source):
    """``source`` of a public-security event."""

    department: Literal["public_security"]


class EducationSource(Source):
    """``source`` of an education event."""

    department: Literal["education"]


class SocialSecuritySource(Source):
    """``source`` of an HR and social-security event."""

    department: Literal["social_security"]


class HealthSource(Source):
    """``source`` of a health event."""

    department: Literal["health"]


SOURCE_CLASSES: Final[dict[Department, type[Source]]] = {
    "public_security": PublicSecuritySource,
    "education": EducationSource,
    "social_security": SocialSecuritySource,
    "health": HealthSource,
}


class EventEnvelope(BaseModel):
    """The envelope fields every event carries, without the payload."""

    model_config = _CONFIG

    event_id: UUID = Field(description="Assigned by the producer; the idempotency key.")
    event_type: str = Field(description="One of the event catalogue (CONTRACT §4).")
    schema_version: int = Field(ge=1, description="Version of the payload schema of this event type.")
    citizen_id: CitizenId = Field(description="The subject: a valid 18-character citizen ID.")
    occurred_at: Timestamp = Field(description="When it happened (business / valid time).")
    recorded_at: Timestamp = Field(description="When the source system recorded it (transaction time).")
    source: Source
    correlation_id: UUID | None = Field(default=None, description="Tracing across departments.")
    causation_id: UUID | None = Field(default=None, description="The event that caused this one.")

    @model_validator(mode="after")
    def _born_by_recording(self) -> Self:
        """No birth date after the day the event was recorded: the clock-free form of "not born in the future".

        A record is judged by its own content only, so a rebuild years later gives the same verdict.
        """
        # The hot path (every event) compares YYYYMMDD digits with the local date of recorded_at, without a time zone
        # conversion: whatever the offset (under 24 hours), the date in China is at least the local date minus
        # one day, so a birth before the local date is never after the date in China.
        at = self.recorded_at
        fields = getattr(type(getattr(self, "payload", None)), "birth_fields", ())  # () for a dict (OutdatedEvent)
        if not fields and int(self.citizen_id[6:14]) < at.year * 10000 + at.month * 100 + at.day:
            return self
        recorded = business_date(at)
        problems: list[tuple[str, str]] = []
        born = born_after(self.citizen_id, recorded)
        if born is not None:
            problems.append(("citizen_id", _born_message(born, recorded)))
        payload = getattr(self, "payload", None)
        for name in fields:
            value = getattr(payload, name)
            if isinstance(value, str):
                born = born_after(value, recorded)
            elif isinstance(value, date) and value > recorded:
                born = value
            else:
                born = None
            if born is not None:
                problems.append((f"payload.{name}", _born_message(born, recorded)))
        if problems:
            # InvalidEvent reports each (field, message) pair on its own.
            raise PydanticCustomError(
                "born_after_recording",
                "{summary}",
                {"summary": "; ".join(f"{loc}: {msg}" for loc, msg in problems), "problems": problems},
            )
        return self


def _born_message(born: date, recorded: date) -> str:
    return (
        f"birth date {born.isoformat()} is after the day the event was recorded ({recorded.isoformat()}, "
        "recorded_at in China): nobody is recorded before they are born"
    )


class Event(EventEnvelope, Generic[PayloadT]):
    """A validated event: envelope plus the typed payload of its (event type, latest schema version).

    Obtain one from ``events.parse_event`` (or ``events.new_event``); ``isinstance(event.payload, X)`` tells
    the type apart.
    """

    payload: PayloadT

    @model_validator(mode="after")
    def _another_number(self) -> Self:
        """A number change or a merge names a number other than the event's own (else it would link a person to
        themselves, which no read could resolve)."""
        for name in getattr(type(self.payload), "other_number_fields", ()):
            if getattr(self.payload, name) == self.citizen_id:
                raise PydanticCustomError(
                    "same_number",
                    "payload.{field}: {value} is the event's own citizen_id; it must name the person's other number",
                    {"field": name, "value": self.citizen_id},
                )
        return self

    @property
    def department(self) -> Department:
        """The department that owns this event type (and recorded the event)."""
        return self.source.department

    @property
    def topic(self) -> str:
        """The Kafka topic this event belongs on."""
        return topic_for(self.source.department)

    @property
    def key(self) -> bytes:
        """The Kafka record key: the citizen ID in UTF-8."""
        return self.citizen_id.encode()

    def __reduce__(self) -> tuple[Any, ...]:
        # The concrete classes are made at run time by the registry and cannot be found by name, so pickle
        # (multiprocessing, caches) carries the canonical bytes and parses them again on the other side.
        return (_rebuild, (self.canonical_bytes(),))

    def canonical_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ISO dates and timestamps, money and UUIDs as strings, no null fields."""
        return self.model_dump(mode="json", exclude_none=True)

    def canonical_bytes(self) -> bytes:
        """Deterministic JSON for hashing and publishing.

        Sorted keys, no whitespace, UTF-8 without escaping, absent optional fields omitted, timestamps with
        the offset they were received with (UTC as ``Z``), dates ``YYYY-MM-DD``, money as a decimal string.
        Stable across processes and round trips: ``parse_event(e.canonical_bytes()).canonical_bytes()`` is
        the same bytes. (There are no floats anywhere in the schema, so no float formatting can drift.)
        """
        # pydantic writes the JSON (in Rust, through the same field serializers as canonical_dict) and orjson sorts
        # the keys: the same bytes as json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) of
        # canonical_dict() (a unit test holds them equal), several times faster — it runs once per event on the
        # projector's hot path.
        return orjson.dumps(orjson.loads(self.model_dump_json(exclude_none=True)), option=orjson.OPT_SORT_KEYS)


def _rebuild(data: bytes) -> Event[Any]:
    from events.parsing import parse_event  # parsing imports this module

    return parse_event(data)


class OutdatedEvent(EventEnvelope):
    """Internal: a valid envelope of an *older* schema version whose payload still has to be upcast.

    ``parse_event`` never returns one; it runs the upcasters and validates the result as the latest version.
    """

    payload: dict[str, Any]
