"""``parse_event``: the one door every event goes through (gateway, projector, SDK, tests).

The whole record (envelope and payload) is checked by a single pydantic-core validation built once per
registry; only failures pay for the Python that turns Pydantic's errors into messages naming each rule and
field path. The checks include the register's bounds (``events.bounds``: the calendar range, text lengths, the
largest record), so what passes here the projector can store and the read paths can compute with. Whatever the
input (bytes that are not UTF-8, JSON that is not an object, a list, a huge integer, nesting 10,000 deep), the
only exception that leaves ``parse_event`` is ``InvalidEvent``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar
from uuid import UUID, uuid4

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from events.bounds import MAX_RECORD_BYTES, RANGE_RULE
from events.envelope import Event, OutdatedEvent, Payload
from events.fields import DEPARTMENTS, PATTERN_RULES
from events.registry import REGISTRY, EventRegistry

__all__ = ["InvalidEvent", "new_event", "parse_event"]

_log = logging.getLogger(__name__)

P = TypeVar("P", bound=Payload)


class InvalidEvent(ValueError):  # noqa: N818 - the name is fixed by CONTRACT §9
    """An event was rejected.

    ``errors`` holds one ``(location, message)`` pair per failed rule; the location is a dotted field
    path such as ``payload.birth_date`` (empty for the record as a whole). ``str()`` lists them all on one
    line, fit for a dead-letter header.
    """

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = errors
        super().__init__("invalid event: " + "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))


def parse_event(raw: bytes | str | Mapping[str, Any], *, registry: EventRegistry | None = None) -> Event[Payload]:
    """Validate one event and return it as a typed ``Event`` (payload upcast to the latest version).

    ``raw`` is the JSON record (bytes as read from Kafka or HTTP, or text) or a mapping of the same shape; a
    mapping may hold Python ``date``/``datetime``/``UUID``/``Decimal`` objects where the JSON holds strings.
    Raises ``InvalidEvent`` naming every failed rule.
    """
    registry = registry or REGISTRY
    data = _as_json(raw)
    _check_size(data)
    adapter = registry.adapter()
    try:
        event = adapter.validate_json(data)
    except ValidationError as exc:
        raise InvalidEvent(_explain(exc, registry, data)) from None
    except Exception as exc:  # a bug of ours must not look like a crash to the caller: reject, and log it
        _log.exception("unexpected error while validating an event")
        raise InvalidEvent([("", f"could not be validated ({type(exc).__name__}: {exc})")]) from exc
    if isinstance(event, OutdatedEvent):
        return _upcast(event, registry)
    return event  # type: ignore[no-any-return]


def new_event(
    payload: P,
    *,
    citizen_id: str,
    occurred_at: datetime,
    system: str,
    region_code: str,
    recorded_at: datetime | None = None,
    event_id: UUID | None = None,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    registry: EventRegistry | None = None,
) -> Event[P]:
    """Build a validated event around ``payload`` (for producers written in Python and the simulator).

    The department comes from the payload class; ``event_id`` defaults to a fresh UUID, ``recorded_at`` to
    now (UTC). Raises ``InvalidEvent`` like ``parse_event``.
    """
    registry = registry or REGISTRY
    try:
        cls = registry.event_class(payload.event_type)
    except KeyError:
        raise InvalidEvent([("event_type", f"unknown event type {payload.event_type!r}")]) from None
    fields = {
        "event_id": event_id or uuid4(),
        "event_type": payload.event_type,
        "schema_version": payload.schema_version,
        "citizen_id": citizen_id,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at or datetime.now(UTC),
        "source": {"department": payload.department, "system": system, "region_code": region_code},
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "payload": payload,
    }
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise InvalidEvent(_explain(exc, registry, None)) from None


# ----------------------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


def _as_json(raw: object) -> bytes | str:
    """The record as JSON text, so that every kind of input is judged by the same (JSON) rules."""
    if isinstance(raw, bytes | str):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, Mapping):
        try:
            return json.dumps(dict(raw), default=_json_default, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidEvent([("", f"the mapping has no JSON form: {exc}")]) from None
    raise InvalidEvent([("", f"an event must be JSON bytes, text or a mapping, got {type(raw).__name__}")])


def _check_size(data: bytes | str) -> None:
    """Refuse a record larger than ``MAX_RECORD_BYTES`` before reading it (size is a rule like any other)."""
    size = len(data)
    # A character is 1-4 bytes in UTF-8: only text near the limit needs counting.
    if isinstance(data, str) and size * 4 > MAX_RECORD_BYTES:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise InvalidEvent(
            [("", f"record size: {size:,} bytes, more than the {MAX_RECORD_BYTES:,} bytes an event may have")]
        )


def _upcast(event: OutdatedEvent, registry: EventRegistry) -> Event[Payload]:
    """Run the upcasters on an older version's payload and validate the result as the latest version."""
    event_type, version = event.event_type, event.schema_version
    latest = registry.latest_version(event_type)
    try:
        payload = registry.upcast(event_type, version, event.payload)
        record = event.model_dump(mode="json", exclude_none=True, exclude={"payload"})
        record.update(schema_version=latest, payload=payload)
        data = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except Exception as exc:  # an upcaster is code; whatever it raises, the record is rejected, not lost
        raise InvalidEvent(
            [("payload", f"could not be upcast from v{version} to v{latest}: {type(exc).__name__}: {exc}")]
        ) from exc
    try:
        result = registry.adapter().validate_json(data)
    except ValidationError as exc:
        note = f" (after upcasting from v{version} to v{latest})"
        raise InvalidEvent([(loc, msg + note) for loc, msg in _explain(exc, registry, data)]) from None
    return result  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------------
# Messages: one per failed rule, with its field path
# ----------------------------------------------------------------------------------------------------

_TYPE_WORDS: Final = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "uuid_type": "must be a UUID string",
    "uuid_parsing": "must be a UUID string",
    "decimal_type": "must be a decimal string",
    "decimal_parsing": "must be a decimal string",
    "missing": "field required",
    "extra_forbidden": "unknown field (not part of the schema)",
    "timezone_aware": "must carry a UTC offset (RFC 3339 with offset)",
    "string_unicode": "must be valid Unicode text",
}
_DATE_ERRORS: Final = {
    "date_type",
    "date_parsing",
    "date_from_datetime_parsing",
    "date_from_datetime_inexact",
}
_DATETIME_ERRORS: Final = {
    "datetime_type",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "datetime_object_invalid",
}


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: object) -> str:
    """A short, safe rendering of an offending input value."""
    if isinstance(value, bool) or value is None:
        return _json_kind(value)
    if isinstance(value, int):
        # Never str() an arbitrary int: beyond 4,300 digits Python refuses, and nobody wants to read it.
        if value.bit_length() <= 64:
            return str(value)
        if value.bit_length() <= 10_000:  # ~3,000 digits: safe to count
            return f"a {len(str(abs(value)))}-digit integer"
        return "an integer of thousands of digits"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:60] + "…")
    if isinstance(value, float):
        return repr(value)
    return _json_kind(value)


def _location(loc: tuple[int | str, ...], registry: EventRegistry) -> tuple[str, tuple[int | str, ...]]:
    """Split Pydantic's location into the union tags it starts with (event type, version) and the path."""
    tags: list[int | str] = []
    rest = list(loc)
    if rest and isinstance(rest[0], str) and rest[0] in registry.event_types:
        tags.append(rest.pop(0))
        if rest and isinstance(rest[0], str) and rest[0].isdigit():
            tags.append(rest.pop(0))
    path = ""
    for part in rest:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path, tuple(tags)


def _version_message(event_type: str, value: object, registry: EventRegistry) -> str:
    if type(value) is not int or value < 1:
        return f"must be an integer ≥ 1, got {_show(value)}"
    readable = ", ".join(str(v) for v in registry.readable_versions(event_type))
    return f"unknown version of {event_type!r}: got {_show(value)}, readable: {readable} (versions are never guessed)"


def _message(error: ErrorDetails, path: str, event_type: str | None, registry: EventRegistry) -> list[str]:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")

    if kind == "citizen_id":
        return list(ctx.get("problems") or [error["msg"]])
    if kind in {"region_code", "employer_code", "date_order", "nothing_corrected", "same_region"}:
        return [error["msg"]]
    if path == "schema_version" and event_type and kind in {"greater_than_equal", "less_than_equal", "int_type"}:
        return [_version_message(event_type, value, registry)]
    if path == "source.department" and kind == "literal_error":
        if value in DEPARTMENTS and event_type:
            owner = registry.department_of(event_type)
            return [
                f"{event_type!r} belongs to {owner}: a department writes only its own event types (got {_show(value)})"
            ]
        return [f"must be one of {', '.join(map(repr, DEPARTMENTS))}, got {_show(value)}"]
    if kind == "literal_error":
        return [f"must be {ctx.get('expected', '?')}, got {_show(value)}"]
    if kind == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(str(ctx.get("pattern")), f"must match {ctx.get('pattern')}")
        return [f"{rule}, got {_show(value)}"]
    if kind in _DATE_ERRORS:
        return [f"must be a real date YYYY-MM-DD, got {_show(value)} ({ctx.get('error', 'invalid')})"]
    if kind in _DATETIME_ERRORS:
        return [f"must be a real RFC 3339 timestamp with offset, got {_show(value)} ({ctx.get('error', 'invalid')})"]
    if kind == "string_too_short":
        return ["must not be empty"]
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "?"
        return [f"must be at most {ctx.get('max_length')} characters, got {length}"]
    if kind in {"greater_than_equal", "less_than_equal"} and isinstance(value, str | date):
        # Only dates and timestamps have bounds and text (or date) input: the register's calendar range.
        return [f"{RANGE_RULE}, got {_show(value)}"]
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[kind]
        limit = next(iter(ctx.values()), "?")
        return [f"must be {bound} {limit}, got {_show(value)}"]
    if kind in _TYPE_WORDS:
        words = _TYPE_WORDS[kind]
        return [words if kind in {"missing", "extra_forbidden", "timezone_aware"} else f"{words}, got {_show(value)}"]
    message = error["msg"]
    return [message[0].lower() + message[1:] if message.startswith("Input should") else message]


def _explain(exc: ValidationError, registry: EventRegistry, data: bytes | str | None) -> list[tuple[str, str]]:
    """Turn Pydantic's errors into ``(field path, message)`` pairs, one per failed rule."""
    results: list[tuple[str, str]] = []
    probe_needed = False
    for error in exc.errors(include_url=False):
        path, tags = _location(error["loc"], registry)
        kind = error["type"]
        event_type = str(tags[0]) if tags else None
        value = error.get("input")
        if kind == "json_invalid":
            results.append(("", f"not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"))
        elif not path and kind == "string_unicode" and not tags:
            results.append(("", "not valid Unicode text (lone surrogate)"))
        elif not path and kind in {"dict_type", "model_type", "model_attributes_type"} and not tags:
            results.append(("", f"an event must be a JSON object, got {_json_kind(value)}"))
        elif kind in {"union_tag_not_found", "union_tag_invalid"} and not tags:
            got = value.get("event_type") if isinstance(value, dict) else None
            if got is None:
                results.append(("event_type", "field required"))
            elif not isinstance(got, str):
                results.append(("event_type", f"must be a string, got {_json_kind(got)}"))
            else:
                results.append(("event_type", f"unknown event type {_show(got)}"))
            probe_needed = True
        elif kind == "born_after_recording":
            results.extend((str(loc), str(msg)) for loc, msg in (error.get("ctx") or {}).get("problems", ()))
        elif kind in {"union_tag_not_found", "union_tag_invalid"} and event_type:
            got = value.get("schema_version") if isinstance(value, dict) else None
            message = "field required" if got is None else _version_message(event_type, got, registry)
            results.append(("schema_version", message))
            probe_needed = True
        else:
            results.extend((path, message) for message in _message(error, path, event_type, registry))
    if probe_needed and data is not None:
        results.extend(_probe_envelope(data, registry, reported={loc for loc, _ in results}))
    unique: list[tuple[str, str]] = []
    for item in results:
        if item not in unique:
            unique.append(item)
    return unique


def _probe_envelope(data: bytes | str, registry: EventRegistry, reported: set[str]) -> list[tuple[str, str]]:
    """When the event type or version is unknown the payload cannot be checked, but the envelope can:
    report its problems too, so that one round trip shows everything that is wrong."""
    try:
        OutdatedEvent.model_validate_json(data)
    except ValidationError as exc:
        found: list[tuple[str, str]] = []
        for error in exc.errors(include_url=False):
            path, _ = _location(error["loc"], registry)
            if path in reported:
                continue
            found.extend((path, message) for message in _message(error, path, None, registry))
        return found
    return []
