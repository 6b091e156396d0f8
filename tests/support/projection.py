"""Helpers shared by the projection tests: real typed events built through ``events.parse_event``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

from stdnum.cn import uscc

from events import Event, Payload, make_citizen_id, parse_event
from events.examples import CITIZENS, example_event
from projections.resident import DepartmentState, fold

CHINA = timezone(timedelta(hours=8))
_NAMESPACE = UUID("0b8f3c1e-3d3a-4a55-8f0e-2f1d6f1a9c70")
_COUNTER = itertools.count()

MIGRANT = CITIZENS["migrant"]
CHILD = CITIZENS["child"]
MOTHER = CITIZENS["mother"]
FATHER = CITIZENS["father"]
# Someone no department has an example for, born on 29 February (a leap-day birthday).
LEAP = make_citizen_id("510107", date(2000, 2, 29), 36)


def employer_code(first17: str) -> str:
    """A valid unified social credit code ending ``first17`` with its check character."""
    return first17 + str(uscc.calc_check_digit(first17 + "0"))


EMPLOYER_A = employer_code("91510107MA6C2B3X4")
EMPLOYER_B = employer_code("91510104MA61XY7Q2")


def ev(
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    citizen: str | None = None,
    on: date | datetime | None = None,
    replace: bool = False,
    source_region: str | None = None,
) -> Event[Payload]:
    """A validated event of ``event_type``: the catalogue example with ``payload`` fields changed.

    ``replace=True`` uses ``payload`` as the whole payload (to leave optional fields out). ``on`` sets
    ``occurred_at`` (a date means 10:30 in China). Every call gets a fresh ``event_id``.
    """
    raw = example_event(event_type)
    raw["payload"] = dict(payload or {}) if replace else {**raw["payload"], **(payload or {})}
    raw["event_id"] = str(uuid5(_NAMESPACE, str(next(_COUNTER))))
    if citizen is not None:
        raw["citizen_id"] = citizen
    if on is not None:
        moment = on if isinstance(on, datetime) else datetime(on.year, on.month, on.day, 10, 30, tzinfo=CHINA)
        raw["occurred_at"] = moment.isoformat()
        raw["recorded_at"] = (moment + timedelta(hours=1)).isoformat()
    # Nobody is recorded before they are born (events.envelope): an example given to another citizen, or a history
    # of made-up dates, is recorded no earlier than the birth of everyone its event names.
    born = latest_birth(raw)
    if born is not None and datetime.fromisoformat(raw["recorded_at"]).astimezone(CHINA).date() < born:
        raw["recorded_at"] = datetime(born.year, born.month, born.day, 12, 0, tzinfo=CHINA).isoformat()
    if source_region is not None:
        raw["source"]["region_code"] = source_region
    return parse_event(raw)


def latest_birth(raw: dict[str, Any]) -> date | None:
    """The latest birth date an event (as a JSON-ready dict) names: in its citizen IDs or a ``birth_date``."""
    payload = raw.get("payload") or {}
    births = [
        date(int(cid[6:10]), int(cid[10:12]), int(cid[12:14]))
        for cid in (
            raw.get("citizen_id"),
            payload.get("mother_citizen_id"),
            payload.get("father_citizen_id"),
            payload.get("previous_citizen_id"),
            payload.get("duplicate_citizen_id"),
        )
        if isinstance(cid, str) and len(cid) == 18
    ]
    if isinstance(payload.get("birth_date"), str):
        births.append(date.fromisoformat(payload["birth_date"]))
    return max(births, default=None)


def states_of(events: Iterable[Event[Payload]]) -> dict[str, DepartmentState]:
    """The department states folded from one citizen's events."""
    return fold(events)
