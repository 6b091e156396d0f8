"""A rebuild on another day is identical (CONTRACT §10): the live projection made today, ``renkou verify``
(replay into a shadow, compare row by row) run with the clock frozen on other days, over the real secured
Kafka and PostgreSQL.

The log holds records whose verdict once depended on the wall clock: a birth on 2027-02-02 recorded the day
before (refused on every day: after its own ``recorded_at``), the same birth recorded on the day and later
(accepted on every day, even while 2027-02-02 is still in the future).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from freezegun import freeze_time

from events.citizen_id import make_citizen_id
from events.examples import example_event
from services.operations.verify import verify
from services.simulator import simulate_bytes
from tests.support.infra import Endpoints
from tests.support.operations import projected
from tests.support.stack import Databases

pytestmark = pytest.mark.integration


def _items() -> list[tuple[str, bytes, bytes]]:
    child = make_citizen_id("510107", date(2027, 2, 2), 15)
    items = []
    for recorded in ("2027-02-01T23:00:00+08:00", "2027-02-02T00:00:00+08:00", "2030-01-01T09:00:00+08:00"):
        raw = example_event("birth.registered")
        raw["event_id"] = f"00000000-0000-4000-8000-{recorded[:4]}{recorded[5:7]}{recorded[8:10]}{recorded[11:13]}00"
        raw["citizen_id"] = child
        raw["payload"]["birth_date"] = "2027-02-02"
        raw["occurred_at"] = raw["recorded_at"] = recorded
        items.append(("public_security", child.encode(), json.dumps(raw, ensure_ascii=False).encode()))
    return [*items, *simulate_bytes(20, seed=7)]


@pytest.mark.parametrize("day", ["2026-01-01", "2027-02-03", "2199-12-31"])
async def test_a_replay_on_another_day_is_identical(infra: Endpoints, databases: Databases, day: str) -> None:
    settings, _ = await projected(infra, databases, _items())  # the live view, made with today's clock
    # tick: the event loop's clock keeps running (timeouts, sleeps), only the calendar is elsewhere.
    with freeze_time(f"{day}T12:00:00Z", tick=True):
        assert date.today().isoformat() == day
        checked = await verify(settings, workers=1)
    assert checked.identical, [d.describe() for d in checked.comparison.differences]
