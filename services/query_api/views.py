"""Reading resident views for the query API: live, or rebuilt for a business date and/or a recorded instant.

* live — ``services.residents.views.load_views`` from the ``projection`` schema, time-relative facts for today
  (China time);
* ``as_of`` — ``services.residents.bitemporal.reconstruct`` folds the archived events that happened by the end of
  that day;
* ``known_at`` — the same, with only the events recorded by that instant (as the system knew it then); without
  ``as_of`` the business date is ``known_at``'s own date in China.

Both paths use the projector's pure ``fold``/``render_view``, so at the latest time they agree with the live
view. ``meta.as_of`` (and ``meta.known_at``) say which time the view was rendered for.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from projections.resident.dates import business_date
from projections.resident.render import VIEW_SECTIONS, restrict_view
from projections.resident.tables import DEFAULT_SCHEMA
from services.access_log.database import AccessEntry
from services.clock import today_in_china
from services.query_api.single_read import NumberHasAliasesError, load_resident, render_sections, sources_of
from services.residents.bitemporal import TimeSlice, reconstruct
from services.residents.views import load_views

__all__ = ["ReadTime", "read_live_view", "read_views"]


@dataclass(frozen=True, slots=True)
class ReadTime:
    """When to read: live (both ``None``) or a bitemporal slice."""

    as_of: date | None = None
    known_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.as_of is None and self.known_at is None

    def business_date(self) -> date:
        if self.as_of is not None:
            return self.as_of
        if self.known_at is not None:
            return business_date(self.known_at)
        return today_in_china()


async def read_views(
    conn: asyncpg.Connection,
    citizen_ids: Sequence[str],
    when: ReadTime,
    sections: Collection[str] = VIEW_SECTIONS,
    schema: str = DEFAULT_SCHEMA,
) -> dict[str, dict[str, Any]]:
    """The views of those ``citizen_ids`` that exist at ``when``, with ``citizen_id`` and only ``sections``.

    Citizens absent from the result have nothing known about them at ``when``.
    """
    day = when.business_date()
    views: dict[str, dict[str, Any]] | None = None
    if not when.live:
        views = {}
        for cid in dict.fromkeys(citizen_ids):
            view = await reconstruct(conn, cid, TimeSlice(as_of=day, known_at=when.known_at), schema)
            # Archived events exist, but none had happened (or been recorded) by then: nothing was known yet.
            if view is not None and view["meta"]["event_count"] > 0:
                views[cid] = restrict_view(view, sections)
    elif len(citizen_ids) == 1:
        try:
            single = await _live_view(conn, citizen_ids[0], day, sections, schema)
        except NumberHasAliasesError:
            pass  # one of a person's numbers: read by person, below
        else:
            views = {citizen_ids[0]: single} if single is not None else {}
    if views is None:
        views = await load_views(conn, citizen_ids, day, schema, sections)
    # Every view now holds only the chosen sections; meta, when chosen, says which time it was rendered for.
    for view in views.values():
        _stamp(view, day, when.known_at)
    return views


async def read_live_view(
    conn: asyncpg.Connection,
    citizen_id: str,
    sections: Collection[str],
    schema: str,
    log: AccessEntry | None,
    statement_timeout: float,
    grant: tuple[str, datetime] | None = None,
) -> dict[str, Any] | None:
    """The live view of ``citizen_id`` with only ``sections``, its access-log entry ``log`` (if any: a read from a
    standby records it elsewhere) appended and committed by the same statement (``single_read.load_resident``);
    ``None`` (nothing recorded) if nothing is known. ``grant`` (a consumer and an instant), when the entry is
    recorded elsewhere: checked by the same statement (``GrantNoLongerValidError`` if it is not active).
    Raises ``NumberHasAliasesError`` (nothing read or recorded) for one of a person's several numbers."""
    day = today_in_china()
    view = await _live_view(conn, citizen_id, day, sections, schema, log, statement_timeout, grant)
    return _stamp(view, day, None) if view is not None else None


async def _live_view(
    conn: asyncpg.Connection,
    citizen_id: str,
    day: date,
    sections: Collection[str],
    schema: str,
    log: AccessEntry | None = None,
    statement_timeout: float | None = None,
    grant: tuple[str, datetime] | None = None,
) -> dict[str, Any] | None:
    # One round trip, and only the states the chosen sections are rendered from (and the family tables only if
    # that section is chosen).
    stored = await load_resident(
        conn,
        citizen_id,
        schema,
        departments=sources_of(sections),
        family="family" in sections,
        log=log,
        grant=grant,
        statement_timeout=statement_timeout,
    )
    return render_sections(stored, day, sections) if stored is not None else None


def _stamp(view: dict[str, Any], day: date, known_at: datetime | None) -> dict[str, Any]:
    """``view`` with its meta (if chosen) saying which time it was rendered for."""
    meta = view.get("meta")
    if meta is not None:
        meta["as_of"] = day.isoformat()
        if known_at is not None:
            meta["known_at"] = known_at.isoformat()
    return view
