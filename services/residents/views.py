"""Stored rows → the resident view of CONTRACT §6, for the projector's view topic, the query API and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from events import Event, InvalidEvent, Payload, parse_event
from projections.resident.aliases import People, fold_person, person_order
from projections.resident.batch import GENESIS, SectionRow
from projections.resident.reads import StoredResident, child_order, load_archived_bodies, load_links, load_residents
from projections.resident.render import Meta, render_view
from projections.resident.state import state_from_json_text, state_to_json_text
from projections.resident.tables import DEFAULT_SCHEMA


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
    meta = Meta.of(
        {dept: row.event_count for dept, row in stored.sections.items()},
        {dept: row.last_event_at for dept, row in stored.sections.items()},
    )
    return render_view(
        stored.citizen_id,
        states,
        as_of=as_of,
        family=stored.family(),
        meta=meta,
        sections=sections,
        aliases=stored.aliases,
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


log = logging.getLogger("renkou.residents")


def parse_archived(bodies: Iterable[bytes]) -> tuple[list[Event[Payload]], int]:
    """The archived events, and how many could not be read.

    The archive keeps what was applied, validated by the rules of its day; an event archived before a rule was
    added (the register's bounds, say) may no longer pass ``parse_event``. A read leaves it out, and says so,
    rather than failing; a rebuild (``renkou replay``) dead-letters it for good.
    """
    events: list[Event[Payload]] = []
    skipped = 0
    for body in bodies:
        try:
            events.append(parse_event(body))
        except InvalidEvent as exc:
            skipped += 1
            log.warning("archived event left out of a read, it no longer validates: %s", exc)
    return events, skipped


async def load_persons(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> dict[str, StoredResident]:
    """``load_residents`` by person (CONTRACT §12), keyed by the number asked.

    A number of a person with several is answered with the person under their current number: their department
    states folded from the archived events of all their numbers (``aliases.fold_person``), their family from the
    first of their numbers that has it. Without any link (almost everyone), exactly ``load_residents``.
    """
    people = await load_links(conn, citizen_ids, schema)
    if not people:
        persons = await load_residents(conn, citizen_ids, schema)
    else:
        persons = await _load_linked(conn, citizen_ids, people, schema)
    relatives = await load_links(conn, sorted({n for p in persons.values() for n in relative_numbers(p)}), schema)
    if not relatives:
        return persons
    return {cid: relatives_by_person(person, relatives) for cid, person in persons.items()}


async def _load_linked(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], people: People, schema: str
) -> dict[str, StoredResident]:
    numbers = {cid: people.numbers(cid) for cid in dict.fromkeys(citizen_ids)}
    wanted = sorted({n for group in numbers.values() for n in group})
    stored = await load_residents(conn, wanted, schema)
    linked = sorted({n for group in numbers.values() if len(group) > 1 for n in group})
    events: dict[str, list[Event[Payload]]] = {}
    if linked:
        archived = await load_archived_bodies(conn, linked, schema=schema)
        for event in parse_archived(body for bodies in archived.values() for body in bodies)[0]:
            events.setdefault(event.citizen_id, []).append(event)
    persons = {}
    for cid, group in numbers.items():
        person = _person(group, stored, events, people.duplicates(cid)) if len(group) > 1 else stored.get(cid)
        if person is not None:
            persons[cid] = person
    return persons


def relative_numbers(stored: StoredResident) -> set[str]:
    """The numbers of the relatives ``stored``'s family names: parents, children, household members."""
    found = {n for n in (stored.mother, stored.father) if n}
    found.update(c["citizen_id"] for c in stored.children if c.get("citizen_id"))
    found.update(m["citizen_id"] for m in stored.household_members)
    return found


def relatives_by_person(stored: StoredResident, people: People) -> StoredResident:
    """``stored`` with each relative under their current number (§12): a parent, child or household member
    recorded under a number since superseded is that person, named once (the resident too, among the household's
    members); a household membership made by a registration cancelled as a duplicate is void (as on
    ``/v1/households``)."""
    if not people:
        return stored
    children: dict[str, dict[str, Any]] = {}
    for child in stored.children:
        number = child.get("citizen_id")
        current = people.current(number) if number else None
        children.setdefault(current or f"certificate:{child.get('certificate_no')}", {**child, "citizen_id": current})
    return replace(
        stored,
        mother=people.current(stored.mother) if stored.mother else None,
        father=people.current(stored.father) if stored.father else None,
        children=sorted(children.values(), key=child_order),
        household_members=members_by_person(stored.household_members, people),
    )


def members_by_person(members: Iterable[Mapping[str, str]], people: People) -> list[dict[str, str]]:
    """A household's ``members`` by person (§12), in the order given: each under their current number, once (the
    first membership given counts); a membership made by a registration cancelled as a duplicate is void."""
    found: dict[str, dict[str, str]] = {}
    for member in members:
        number = member["citizen_id"]
        link = people.links.get(number)
        if link is None or link.kind != "identity.duplicate_merged":
            current = people.current(number)
            found.setdefault(current, {**member, "citizen_id": current})
    return list(found.values())


def _person(
    numbers: Sequence[str],
    stored: dict[str, StoredResident],
    events: dict[str, list[Event[Payload]]],
    duplicates: frozenset[str],
) -> StoredResident | None:
    parts = [stored[n] for n in numbers if n in stored]
    if not parts:
        return None
    current = numbers[0]
    mine = [event for n in numbers for event in events.get(n, ())]
    sections: dict[str, SectionRow] = {}
    applied_by_department: dict[str, list[Event[Payload]]] = {}
    for event in person_order(numbers, mine, duplicates):  # once, not once per department
        applied_by_department.setdefault(event.source.department, []).append(event)
    for department, state in fold_person(numbers, mine, duplicates).items():
        applied = applied_by_department.get(department, [])
        # The statements of a read are not one snapshot: an archived event may be seen whose section was not (a
        # batch committed, or a replay swapped in, between them). Its chain counters are then unknown here.
        chain = next((part.sections[department] for part in parts if department in part.sections), None)
        sections[department] = SectionRow(
            current,
            department,
            state_to_json_text(state),
            len(applied),
            max(e.occurred_at.astimezone(UTC) for e in applied) if applied else datetime.min.replace(tzinfo=UTC),
            chain.chain_seq if chain is not None else 0,
            chain.chain_head if chain is not None else GENESIS,
        )
    children: dict[str, dict[str, Any]] = {}
    for part in parts:
        for child in part.children:
            children.setdefault(child.get("citizen_id") or f"certificate:{child.get('certificate_no')}", child)
    # A household membership made by a registration cancelled as a duplicate is void, as that registration is.
    household = next(
        (part for part in parts if part.household_id is not None and part.citizen_id not in duplicates), None
    )
    return replace(
        parts[0],
        citizen_id=current,
        sections=sections,
        mother=next((part.mother for part in parts if part.mother is not None), None),
        father=next((part.father for part in parts if part.father is not None), None),
        children=sorted(children.values(), key=child_order),
        household_id=household.household_id if household is not None else None,
        household_members=household.household_members if household is not None else [],
        aliases=tuple(numbers[1:]),
    )
