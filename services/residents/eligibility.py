"""Eligibility of one resident, from the event archive: the I/O around ``projections.eligibility``.

Reads the citizen's archived events (``projection.event_archive``, each body parsed with ``parse_event``), the
parents the family tables name (``parent_links``, then ``birth_certificates``) and their archived events, and
hands them to the pure evaluator with the policy and ``as_of``. A person who has held several numbers (CONTRACT
§12) is decided for by person: the events of all their numbers, the answer under the current one. The answer is
CONTRACT §7's ``{policy, as_of, decisions: [...]}`` (plus ``citizen_id`` and the plan's identity).

Policies come from the package (``projections/eligibility/policies``), or from the directory named by
``RENKOU_POLICY_DIR`` where an operator keeps edited copies (an ``assumed`` parameter replaced by the city's
own number).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

import asyncpg
import orjson

from events import Event, Payload
from projections.eligibility import ParentInput, Policy, decide, events_until, load_policy
from projections.eligibility.facts import FAMILY_RELATIONSHIPS, Relation, RelativeInput, household_relation
from projections.resident.aliases import person_order
from projections.resident.reads import (
    StatedParent,
    load_archived_bodies,
    load_children_named,
    load_household_relations,
    load_links,
    load_parent_links,
)
from projections.resident.tables import DEFAULT_SCHEMA
from services.residents.views import parse_archived

__all__ = [
    "POLICY_DIR_ENV",
    "EligibilityAnswer",
    "consulted",
    "eligibility",
    "load_archived_events",
    "policy_directory",
    "resolve_policy",
]

POLICY_DIR_ENV: Final = "RENKOU_POLICY_DIR"
"""Environment variable naming a directory of policy files that replace the packaged ones."""


def policy_directory() -> Path | None:
    """The operator's policy directory (``RENKOU_POLICY_DIR``), if one is set."""
    raw = os.environ.get(POLICY_DIR_ENV, "").strip()
    return Path(raw) if raw else None


def resolve_policy(policy_id: str) -> Policy:
    """The policy ``policy_id`` (the operator's copy if ``RENKOU_POLICY_DIR`` is set); ``PolicyError`` otherwise."""
    return load_policy(policy_id, policy_directory())


@dataclass(frozen=True, slots=True)
class EligibilityAnswer:
    """The answer, and every citizen whose data it shows (the resident, and the parents it looked at)."""

    body: dict[str, Any]
    consulted: tuple[str, ...]


async def load_archived_events(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> dict[str, list[Event[Payload]]]:
    """Each citizen's archived events, per department in chain (log) order; citizens without any are absent."""
    bodies = await load_archived_bodies(conn, citizen_ids, schema=schema)
    # An event archived before a rule it breaks existed is left out (services.residents.bitemporal.parse_archived).
    return {cid: parse_archived(found)[0] for cid, found in bodies.items()}


async def eligibility(
    conn: asyncpg.Connection,
    citizen_id: str,
    policy: Policy,
    as_of: date,
    schema: str = DEFAULT_SCHEMA,
) -> EligibilityAnswer | None:
    """Every benefit of ``policy`` decided for ``citizen_id`` on ``as_of`` from the archive.

    ``None`` when nothing about the citizen had happened by ``as_of`` (no archived event, or none that early),
    as the view's ``as_of`` read answers it.
    """
    people = await load_links(conn, [citizen_id], schema)
    numbers = people.numbers(citizen_id)
    current = numbers[0]
    archived = await load_archived_events(conn, numbers, schema)
    # A person with several numbers (§12): the events of all of them, in the order fold_person applies them.
    events = (
        person_order(numbers, [e for n in numbers for e in archived.get(n, ())], people.duplicates(citizen_id))
        if len(numbers) > 1
        else archived.get(current, [])
    )
    if not events_until(events, as_of):
        return None
    links: list[StatedParent] = []
    for number in numbers:  # the family tables name the child by the number it was registered under
        links = await load_parent_links(conn, number, schema)
        if links:
            break
    found = await _by_person(conn, [link.citizen_id for link in links], schema)
    parents = []
    for link in links:
        number, theirs, aliases = found[link.citizen_id]
        parents.append(ParentInput(link.role, number, link.event_ids, theirs, aliases))
    relatives: list[RelativeInput] = []
    if policy.needs_relatives:
        relatives = await _relatives(conn, numbers, links, found, schema)
    body = decide(policy, current, events, as_of, parents, numbers[1:], relatives)
    return EligibilityAnswer(body, consulted(body, current, [p.citizen_id for p in parents], relatives))


def consulted(
    body: dict[str, Any], current: str, parents: Sequence[str], relatives: Sequence[RelativeInput]
) -> tuple[str, ...]:
    """Every citizen whose data the answer shows, for the access log (CONTRACT §11): the resident, the parents
    it looked at, and each relative whose number appears anywhere in it (a fact, or a reason's words)."""
    text = orjson.dumps(body).decode()
    # A whole number only: a 15-digit number inside an 18-digit one is not that person.
    shown = sorted(
        {r.citizen_id for r in relatives if re.search(rf"(?<![0-9]){re.escape(r.citizen_id)}(?![0-9Xx])", text)}
    )
    return tuple(dict.fromkeys((current, *parents, *shown)))


async def _by_person(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], schema: str
) -> dict[str, tuple[str, list[Event[Payload]], tuple[str, ...]]]:
    """For each number: the person's current number, the events of every number they have held (in the order
    ``fold_person`` applies them) and their other numbers."""
    if not citizen_ids:
        return {}
    people = await load_links(conn, citizen_ids, schema)
    numbers = {cid: people.numbers(cid) for cid in citizen_ids}
    archived = await load_archived_events(conn, [n for group in numbers.values() for n in group], schema)
    out = {}
    for cid, theirs in numbers.items():
        events = [e for n in theirs for e in archived.get(n, ())]
        if len(theirs) > 1:
            events = person_order(theirs, events, people.duplicates(cid))
        out[cid] = (theirs[0], events, theirs[1:])
    return out


async def _relatives(
    conn: asyncpg.Connection,
    numbers: Sequence[str],
    parents: Sequence[StatedParent],
    loaded: dict[str, tuple[str, list[Event[Payload]], tuple[str, ...]]],
    schema: str,
) -> list[RelativeInput]:
    """The spouse, children and parents the family tables link to the person (any of their numbers), with each
    relative's events by person (``loaded`` already has the parents'), for the family routes.

    A child counts when the child's own parents, by the view's precedence (``load_parent_links``: public
    security's registration before health's certificate), name the person. The tables say who is linked now;
    ``derive_facts`` keeps a household link only if both hukou put them in that household on the day decided
    for (a household of the past is not looked for)."""
    candidates: list[tuple[Relation, str, Literal["birth", "household"], tuple[str, ...]]] = [
        ("parent", link.citizen_id, "birth", link.event_ids) for link in parents
    ]
    for child in await load_children_named(conn, numbers, schema):
        for link in await load_parent_links(conn, child, schema):
            if link.citizen_id in numbers:
                candidates.append(("child", child, "birth", link.event_ids))
                break
    for mine, member, theirs in await load_household_relations(conn, numbers, FAMILY_RELATIONSHIPS, schema):
        relation = household_relation(mine, theirs)
        if relation is not None:
            candidates.append((relation, member, "household", ()))
    candidates = [c for c in candidates if c[1] not in numbers]
    found = {**loaded, **await _by_person(conn, sorted({c[1] for c in candidates} - set(loaded)), schema)}
    return [
        RelativeInput(relation, found[cid][0], basis, ids, found[cid][1], found[cid][2])
        for relation, cid, basis, ids in candidates
        if found[cid][0] not in numbers
    ]
