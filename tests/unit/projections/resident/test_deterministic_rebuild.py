"""Rebuilds are deterministic (CONTRACT §10): validation never reads the clock, so a replay on another day judges
every record as the live projector did and folds the same projection.

The clock is frozen with freezegun (a fixture per day); the records include the ones that used to change their
verdict with the date: a birth "in the future" of one day and "in the past" of the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from freezegun import freeze_time

from events import InvalidEvent, make_citizen_id, parse_event
from events.examples import example_event
from projections.resident import fold_by_citizen, render_view
from services.simulator import simulate_bytes

CHINA = timezone(timedelta(hours=8))
DAYS = ["2024-01-01", "2027-02-01", "2027-02-03", "2199-12-31"]


@pytest.fixture(params=DAYS)
def frozen_day(request: pytest.FixtureRequest) -> Iterator[date]:
    """The wall clock stopped on one day (in China and in UTC alike: noon UTC)."""
    with freeze_time(f"{request.param}T12:00:00Z"):
        assert date.today().isoformat() == request.param
        yield date.fromisoformat(request.param)


def _records() -> list[bytes]:
    """Records whose verdict used to depend on the day: births around 2027-02-02, recorded before or after them."""
    child = make_citizen_id("510107", date(2027, 2, 2), 15)
    out = []
    for recorded in ("2027-02-01T23:00:00+08:00", "2027-02-02T00:00:00+08:00", "2030-01-01T09:00:00+08:00"):
        raw = example_event("birth.registered")
        raw["citizen_id"] = child
        raw["payload"]["birth_date"] = "2027-02-02"
        raw["occurred_at"] = raw["recorded_at"] = recorded
        out.append(json.dumps(raw, ensure_ascii=False).encode())
    certified = example_event("birth.certified")
    certified["payload"]["birth_date"] = "2027-02-02"
    certified["occurred_at"] = certified["recorded_at"] = "2027-02-02T10:00:00+08:00"
    out.append(json.dumps(certified, ensure_ascii=False).encode())
    out.extend(value for _, _, value in simulate_bytes(30, seed=3))
    return out


RECORDS = _records()


def _verdicts() -> list[str]:
    verdicts = []
    for raw in RECORDS:
        try:
            verdicts.append(parse_event(raw).canonical_bytes().decode())
        except InvalidEvent as exc:
            verdicts.append(f"rejected: {exc}")
    return verdicts


def _projection() -> dict[str, Any]:
    accepted = []
    for raw in RECORDS:
        try:
            accepted.append(parse_event(raw))
        except InvalidEvent:
            continue
    as_of = date(2030, 6, 30)
    return {cid: render_view(cid, states, as_of=as_of) for cid, states in fold_by_citizen(accepted).items()}


# Judged once at import, on the real day: every frozen day must give exactly this.
EXPECTED_VERDICTS = _verdicts()
EXPECTED_PROJECTION = _projection()


def test_the_same_bytes_get_the_same_verdict_whatever_the_day(frozen_day: date) -> None:
    assert _verdicts() == EXPECTED_VERDICTS
    # The record recorded the day before the birth is refused on every day, the others accepted on every day.
    assert EXPECTED_VERDICTS[0].startswith("rejected: invalid event: citizen_id: birth date 2027-02-02 is after")
    assert not any(v.startswith("rejected") for v in EXPECTED_VERDICTS[1:])


def test_a_replay_after_a_clock_change_folds_the_identical_projection(frozen_day: date) -> None:
    assert _projection() == EXPECTED_PROJECTION


def test_the_clock_really_is_frozen() -> None:
    with freeze_time("2027-02-01T12:00:00Z"):
        assert datetime.now(CHINA).date() == date(2027, 2, 1)
    with freeze_time("2027-02-03T12:00:00Z"):
        assert datetime.now(CHINA).date() == date(2027, 2, 3)
