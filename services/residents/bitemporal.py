"""Bitemporal reconstruction from the event archive, with the same pure functions as the live projection.

``as_of`` (business time): the events that had *happened* by the end of that day, as we know them now.
``known_at`` (transaction time): the events the source systems had *recorded* by that instant — what the system
could have known then. Both together: what we knew at ``known_at`` about the world on ``as_of``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from projections.resident.aliases import fold_person, person_order
from projections.resident.apply import fold
from projections.resident.dates import CHINA_TZ
from projections.resident.reads import load_archive_slice, load_links
from projections.resident.render import Meta, render_view
from projections.resident.tables import DEFAULT_SCHEMA
from services.residents.views import load_persons, parse_archived


@dataclass(frozen=True)
class TimeSlice:
    as_of: date
    known_at: datetime | None = None


log = logging.getLogger("renkou.bitemporal")


def _cutoff(as_of: date) -> datetime:
    """The first instant after ``as_of`` in China: an event happened by the end of ``as_of`` iff it is before."""
    return datetime.combine(as_of + timedelta(days=1), time(), CHINA_TZ)


async def reconstruct(
    conn: asyncpg.Connection, citizen_id: str, when: TimeSlice, schema: str = DEFAULT_SCHEMA
) -> dict[str, Any] | None:
    """The view of ``citizen_id`` folded from the archive for ``when``; ``None`` if no archived event falls in it.

    ``None`` both when nothing about the citizen was ever archived and when nothing had happened by ``as_of``
    or been recorded by ``known_at``: the resident did not exist for the system then, which is not the same as
    an empty view.

    Family links come from the current family tables, and a person's numbers (§12) from the current number links
    (neither is versioned); every section and every flag comes from the archived events alone — each number's
    folded on its own and combined as a live read combines them (``projections.resident.aliases``).
    """
    people = await load_links(conn, [citizen_id], schema)
    numbers = people.numbers(citizen_id)
    rows = await load_archive_slice(conn, numbers, _cutoff(when.as_of), when.known_at, schema)
    if not rows:
        return None
    chosen = [body for body, included in rows if included]
    if not chosen:
        return None
    events, skipped = parse_archived(chosen)
    if len(numbers) > 1:  # a person's numbers (§12): a void duplicate registration's events are not applied
        events = person_order(numbers, events, people.duplicates(citizen_id))
        states = fold_person(numbers, events)
    else:
        states = fold(events)
    counts: dict[str, int] = {}
    latest: dict[str, datetime] = {}
    for event in events:
        counts[event.department] = counts.get(event.department, 0) + 1
        seen = latest.get(event.department)
        # In UTC, as PostgreSQL hands the stored sections' last_event_at back: one view, one rendering.
        occurred = event.occurred_at.astimezone(UTC)
        latest[event.department] = occurred if seen is None else max(seen, occurred)
    stored = (await load_persons(conn, [citizen_id], schema)).get(citizen_id)
    family = stored.family() if stored is not None else None
    view = render_view(
        numbers[0], states, as_of=when.as_of, family=family, meta=Meta.of(counts, latest), aliases=numbers[1:]
    )
    if skipped:
        view["meta"]["unreadable_events"] = skipped
    view["meta"]["as_of"] = when.as_of.isoformat()
    if when.known_at is not None:
        view["meta"]["known_at"] = when.known_at.isoformat()
    return view
