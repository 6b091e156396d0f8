"""The register's bounds (``events.bounds``): what ``parse_event`` accepts can be stored and computed with.

Every value the projector once choked on is rejected here with a message naming the rule, and the edges of the
range are accepted in every offset.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from events import InvalidEvent, parse_event
from events.bounds import (
    EARLIEST_INSTANT,
    LATEST_INSTANT,
    MAX_RECORD_BYTES,
    NAME_MAX_CHARS,
    RANGE_RULE,
    SHORT_TEXT_MAX_CHARS,
    TEXT_MAX_CHARS,
    business_date,
)
from events.citizen_id import make_citizen_id
from events.examples import example_event

OFFSETS = [
    timezone(timedelta(hours=h, minutes=m)) for h, m in ((-23, -59), (-14, 0), (0, 0), (8, 0), (14, 0), (23, 59))
]


def errors_of(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(json.dumps(raw, ensure_ascii=False))
    return info.value.errors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "9999-12-31T23:59:59-14:00"),  # past Python's last year once in UTC
        ("occurred_at", "0001-01-01T00:00:00+14:00"),  # before Python's first year once in UTC
        ("occurred_at", "9999-12-31T23:59:59+00:00"),  # stored, but no read path can compute with it
        ("occurred_at", "0001-01-01T00:00:00Z"),
        ("recorded_at", "2200-01-01T00:00:00+08:00"),
        ("recorded_at", "1869-12-31T15:59:59Z"),  # 1869-12-31T23:59:59 in China
    ],
)
def test_timestamps_outside_the_range_name_the_rule(field: str, value: str) -> None:
    raw = example_event("hukou.moved_out")
    raw[field] = value
    assert errors_of(raw) == [
        (
            field,
            "out of the register's range: dates and timestamps must fall between 1870-01-01 and 2199-12-31 "
            f"(dates in China, UTC+08:00), got {value!r}",
        )
    ]


@pytest.mark.parametrize("tz", OFFSETS, ids=str)
def test_the_first_and_last_instants_are_accepted_in_every_offset(tz: timezone) -> None:
    raw = example_event("hukou.moved_out")
    raw["occurred_at"] = EARLIEST_INSTANT.astimezone(tz).isoformat()
    raw["recorded_at"] = LATEST_INSTANT.astimezone(tz).isoformat()
    event = parse_event(raw)
    assert business_date(event.occurred_at) == date(1870, 1, 1)
    assert business_date(event.recorded_at) == date(2199, 12, 31)
    # One microsecond further is out, whatever the offset.
    raw["occurred_at"] = (EARLIEST_INSTANT - timedelta(microseconds=1)).astimezone(tz).isoformat()
    assert [loc for loc, _ in errors_of(raw)] == ["occurred_at"]


@pytest.mark.parametrize(
    ("period", "ok"), [("0000-01", False), ("1869-12", False), ("1870-01", True), ("2199-12", True), ("2200-01", False)]
)
def test_contribution_periods_stay_in_the_range(period: str, ok: bool) -> None:
    raw = example_event("insurance.contributed")
    raw["payload"]["period"] = period
    if ok:
        assert parse_event(raw).payload.period == period  # type: ignore[attr-defined]
    else:
        [(loc, message)] = errors_of(raw)
        assert loc == "payload.period"
        assert message.startswith("must be a month in the form YYYY-MM between 1870-01 and 2199-12")


@pytest.mark.parametrize(
    ("day", "ok"),
    [("1869-12-31", False), ("1870-01-01", True), ("2199-12-31", True), ("2200-01-01", False), ("9999-12-31", False)],
)
def test_payload_dates_stay_in_the_range(day: str, ok: bool) -> None:
    raw = example_event("residence_permit.issued")
    raw["payload"].update(issued_on="1870-01-01", valid_until=day)
    if ok:
        parse_event(raw)
    else:
        [(loc, message)] = errors_of(raw)
        assert loc == "payload.valid_until"
        assert message == f"{RANGE_RULE}, got {day!r}"


def test_a_record_larger_than_the_limit_is_refused_before_it_is_read() -> None:
    raw = json.dumps(example_event("hukou.moved_out"))
    at_the_limit = raw[:-1] + " " * (MAX_RECORD_BYTES - len(raw)) + "}"  # whitespace is valid JSON
    assert len(at_the_limit.encode()) == MAX_RECORD_BYTES
    assert parse_event(at_the_limit.encode()).event_type == "hukou.moved_out"
    with pytest.raises(InvalidEvent, match=r"record size: 65,537 bytes, more than the 65,536 bytes an event may have"):
        parse_event((at_the_limit[:-1] + " }").encode())


def test_the_largest_valid_event_is_far_below_the_record_limit() -> None:
    """Every text field full, each character a surrogate pair written as two JSON escapes (12 bytes), indented."""
    wide = "\U0001f600"
    raw = example_event("birth.registered")
    raw["payload"].update(
        name=wide * NAME_MAX_CHARS,
        ethnicity=wide * SHORT_TEXT_MAX_CHARS,
        address=wide * TEXT_MAX_CHARS,
        household_id="H" * 64,
        birth_certificate_no="C" * 64,
    )
    raw["source"]["system"] = wide * SHORT_TEXT_MAX_CHARS
    body = json.dumps(raw, ensure_ascii=True, indent=4).encode()
    event = parse_event(body)
    assert event.payload.name == wide * NAME_MAX_CHARS  # type: ignore[attr-defined]
    assert len(body) < 10 * 1024 < MAX_RECORD_BYTES


def test_nobody_is_recorded_before_they_are_born() -> None:
    child = make_citizen_id("510107", date(2024, 5, 1), 15)
    raw = example_event("birth.registered")
    assert raw["citizen_id"] == child
    # The day before the birth in China, however the producer writes the offset.
    for recorded in ("2024-04-30T23:59:59+08:00", "2024-04-30T15:59:59Z", "2024-04-29T23:59:59-14:00"):
        raw["recorded_at"] = recorded
        assert errors_of(raw) == [
            (
                loc,
                "birth date 2024-05-01 is after the day the event was recorded (2024-04-30, recorded_at in China): "
                "nobody is recorded before they are born",
            )
            for loc in ("citizen_id", "payload.birth_date")
        ]
    # The birth day itself in China, even where the producer's local date is still the day before.
    for recorded in ("2024-05-01T00:00:00+08:00", "2024-04-30T16:00:00Z", "2024-04-30T02:00:00-14:00"):
        raw["recorded_at"] = recorded
        assert parse_event(raw).citizen_id == child


def test_parents_named_in_a_payload_are_bounded_too() -> None:
    raw = example_event("birth.certified")  # the subject is the mother, born 1990-03-08
    unborn_father = make_citizen_id("510107", date(2030, 1, 1), 31)
    raw["payload"]["father_citizen_id"] = unborn_father
    raw["recorded_at"] = datetime(2029, 12, 31, 12, tzinfo=UTC).isoformat()
    assert [loc for loc, _ in errors_of(raw)] == ["payload.father_citizen_id"]
