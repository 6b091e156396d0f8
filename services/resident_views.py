"""Stored rows → the resident view of CONTRACT §6, for the projector's view topic, the query API and the CLI."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import asyncpg

from projections.resident.family import FamilyView
from projections.resident.render import Meta, render_view
from projections.resident.state import state_from_json_text
from projections.resident.store import DEFAULT_SCHEMA, StoredResident, load_persons


def render_stored(
    stored: StoredResident,
    as_of: date,
    departments: Collection[str] | None = None,
    sections: Collection[str] | None = None,
) -> dict[str, Any]:
    """The view of one stored resident, with time-relative facts computed for ``as_of``.

    ``departments``: parse only these departments' states (the others render as empty states, so the sections
    drawn from them must not be shown); every department still gives ``meta`` its counts. ``sections``: render
    only these view sections (``render_view``).
    """
    states = {
        dept: state_from_json_text(dept, row.state)
        for dept, row in stored.sections.items()
        if departments is None or dept in departments
    }
    counts = {dept: row.event_count for dept, row in stored.sections.items()}
    meta = Meta(
        version=sum(counts.values()),
        event_count=sum(counts.values()),
        event_counts=counts,
        last_event_at={dept: row.last_event_at for dept, row in stored.sections.items()},
    )
    family = FamilyView(
        mother=stored.mother,
        father=stored.father,
        children=stored.children,
        household_members=stored.household_members,
    )
    return render_view(
        stored.citizen_id, states, as_of=as_of, family=family, meta=meta, sections=sections, aliases=stored.aliases
    )


async def load_views(
    conn: asyncpg.Connection,
    citizen_ids: Sequence[str],
    as_of: date,
    schema: str = DEFAULT_SCHEMA,
    sections: Collection[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Rendered views of every citizen in ``citizen_ids`` that has any stored section (only ``sections``, if
    given, with ``citizen_id``), keyed by the number asked; a number of a person with several is answered with
    the person's view under their current number (``load_persons``, §12)."""
    stored = await load_persons(conn, citizen_ids, schema)
    return {cid: render_stored(s, as_of, sections=sections) for cid, s in stored.items()}
