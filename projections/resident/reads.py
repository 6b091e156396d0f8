"""The read store: every read of the resident-view projection's tables — residents with their family and household,
a person's numbers, the archive (live, as of a date, as known at an instant) and the checkpoints.

Each statement is declared on ``tables`` and compiled once per schema (the live one, or a shadow being rebuilt or
verified); each takes an open asyncpg connection, so that a caller's reads share its transaction. The rules a
reader must follow — which department's statement of a parent counts (``PARENT_RANK``, ``ResidentRows``), when the
log learnt of an event (``LOGGED_AT``) — are written here once. The write store, ``store.PostgresProjectionStore``,
writes these tables; ``services.query_api.single_read`` keeps the query API's one-round-trip read of a single
resident, which also appends its access-log entry, and assembles its rows with the same ``ResidentRows``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY

from events.public_security import Relationship
from projections.resident import tables
from projections.resident.aliases import NumberLink, People
from projections.resident.batch import SectionRow
from projections.resident.family import FamilyView
from projections.resident.tables import DEFAULT_SCHEMA, Statement, any_of, unnest

PROJECTION: Final = "resident_view"
"""The name the resident view's checkpoints are stored under."""


# --- checkpoints -------------------------------------------------------------------------------------------------
_CHECKPOINTS: Final = Statement(
    select(tables.checkpoints.c.topic, tables.checkpoints.c.kafka_partition, tables.checkpoints.c.next_offset).where(
        tables.checkpoints.c.projection == bindparam("projection", type_=Text)
    )
)


async def read_checkpoints(
    conn: asyncpg.Connection,
    schema: str = DEFAULT_SCHEMA,
    topics: Iterable[str] | None = None,
    projection: str = PROJECTION,
) -> dict[tuple[str, int], int]:
    """The next offset of each partition ``projection`` has checkpointed in ``schema`` (of ``topics`` only, when
    given)."""
    wanted = None if topics is None else set(topics)
    rows = await conn.fetch(*_CHECKPOINTS.bind(schema, projection=projection))
    return {
        (r["topic"], r["kafka_partition"]): int(r["next_offset"])
        for r in rows
        if wanted is None or r["topic"] in wanted
    }


# --- sections ----------------------------------------------------------------------------------------------------
def section_columns(t: Table) -> tuple[ColumnElement[Any], ...]:
    """A section row's columns as ``SectionRow`` takes them (its state as JSON text, parsed only where needed)."""
    return (
        t.c.citizen_id,
        t.c.department,
        cast(t.c.state, Text).label("state"),
        t.c.event_count,
        t.c.last_event_at,
        t.c.chain_seq,
        t.c.chain_head,
    )


def section_row(r: asyncpg.Record) -> SectionRow:
    return SectionRow(
        r["citizen_id"],
        r["department"],
        r["state"],
        r["event_count"],
        r["last_event_at"],
        r["chain_seq"],
        bytes(r["chain_head"]),
    )


@dataclass(frozen=True, slots=True)
class StoredResident:
    """Everything stored about one resident, as read for rendering: sections, family rows, chain counters."""

    citizen_id: str
    sections: dict[str, SectionRow]
    mother: str | None
    father: str | None
    children: list[dict[str, Any]]
    household_id: str | None
    household_members: list[dict[str, str]]
    aliases: tuple[str, ...] = ()
    """The person's other numbers (§12), most recently superseded first; empty for most."""

    def family(self) -> FamilyView:
        """The family section's stored facts: parents, children, household members."""
        return FamilyView(
            mother=self.mother, father=self.father, children=self.children, household_members=self.household_members
        )


_LINK_COLUMNS: Final = (
    *(c for c in tables.number_links.c if c.name != "event_id"),
    cast(tables.number_links.c.event_id, Text).label("event_id"),
)
_MAX_LINK_ROUNDS: Final = 8  # a person with more numbers than this is not a data error renkou can resolve
_LINKS_OF: Final = Statement(
    select(*_LINK_COLUMNS).where(
        or_(
            any_of(tables.number_links.c.old_citizen_id, "numbers"),
            any_of(tables.number_links.c.new_citizen_id, "numbers"),
        )
    )
)
_ALL_LINKS: Final = Statement(select(*_LINK_COLUMNS))


async def load_links(conn: asyncpg.Connection, numbers: Sequence[str], schema: str = DEFAULT_SCHEMA) -> People:
    """Every link reachable from ``numbers`` (a person's whole chain), resolved; one query when there is none."""
    links: dict[str, NumberLink] = {}
    asked: set[str] = set()
    frontier = set(numbers)
    for _ in range(_MAX_LINK_ROUNDS):
        ask = sorted(frontier - asked)
        if not ask:
            break
        asked.update(ask)
        for r in await conn.fetch(*_LINKS_OF.bind(schema, numbers=ask)):
            link = _link(r)
            links[link.old] = link
            frontier.update((link.old, link.new))
    return People(links.values())


async def person_numbers(conn: asyncpg.Connection, number: str, schema: str = DEFAULT_SCHEMA) -> tuple[str, ...]:
    """Every number of ``number``'s person, the current one first (``People.numbers``): ``(number,)`` for most."""
    return (await load_links(conn, [number], schema)).numbers(number)


async def load_all_links(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> People:
    """Every link of the projection, resolved (statistics count every person with several numbers once)."""
    return People(_link(r) for r in await conn.fetch(_ALL_LINKS.sql(schema)))


PARENT_RANK: Final = "(department <> 'public_security')::int"
"""SQL over ``parent_links``: which department's statement of a parent counts, the lowest first — public
security's registration is authoritative (0), health's birth certificate fills in where it is silent (1). The one
precedence the view, the single read and eligibility's facts follow."""

LOGGED_AT: Final = "coalesce(logged_at, recorded_at)"
"""SQL: when the log learnt of an archived event — the broker's stamp (migration 0018); for a row without one
(archived before it, or from a topic the broker did not stamp) the department's recorded time, which a replay
keeps (the archive time would not survive one)."""

_LINKS_KNOWN_AT: Final = Statement(
    select(*_LINK_COLUMNS).where(
        tables.number_links.c.event_id.in_(
            select(tables.event_archive.c.event_id).where(
                literal_column(LOGGED_AT) <= bindparam("known_at", type_=tables.event_archive.c.logged_at.type)
            )
        )
    )
)


async def load_links_known_at(conn: asyncpg.Connection, known_at: datetime, schema: str = DEFAULT_SCHEMA) -> People:
    """The links whose event the log held by ``known_at`` (``event_archive.logged_at``, else its archive time),
    resolved: who was whom as the system knew it then."""
    return People(_link(r) for r in await conn.fetch(*_LINKS_KNOWN_AT.bind(schema, known_at=known_at)))


def _link(r: asyncpg.Record) -> NumberLink:
    return NumberLink(r["old_citizen_id"], r["new_citizen_id"], r["linked_on"], r["event_id"], r["kind"], r["reason"])


def _archive_statements() -> tuple[Statement, Statement]:
    t = tables.event_archive
    departments = bindparam("departments", type_=ARRAY(Text))
    bodies = (
        select(t.c.citizen_id, t.c.body)
        .where(any_of(t.c.citizen_id), or_(departments.is_(None), t.c.department == any_(departments)))
        .order_by(t.c.citizen_id, t.c.department, t.c.chain_seq)
    )
    current = bindparam("current", type_=Text)
    rows = (
        select(*(c for c in t.c if c.name != "logged_at"))
        .where(any_of(t.c.citizen_id, "numbers"), t.c.department == any_(departments))
        .order_by(t.c.department, t.c.citizen_id != current, t.c.citizen_id, t.c.chain_seq)
    )
    return Statement(bodies), Statement(rows)


_ARCHIVED_BODIES_OF, _ARCHIVE_ROWS = _archive_statements()


async def load_archived_bodies(
    conn: asyncpg.Connection,
    citizen_ids: Sequence[str],
    departments: Sequence[str] | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> dict[str, list[bytes]]:
    """The archived event bodies of each of ``citizen_ids`` (of ``departments`` only, if given), per department in
    chain (log) order; citizens without any are absent."""
    rows = await conn.fetch(
        *_ARCHIVED_BODIES_OF.bind(
            schema,
            citizen_id=sorted(set(citizen_ids)),
            departments=None if departments is None else list(departments),
        )
    )
    bodies: dict[str, list[bytes]] = {}
    for row in rows:
        bodies.setdefault(row["citizen_id"], []).append(bytes(row["body"]))
    return bodies


_ARCHIVED_IDS: Final = Statement(
    select(cast(tables.event_archive.c.event_id, Text).label("event_id")).where(any_of(tables.event_archive.c.event_id))
)


async def archived_event_ids(
    conn: asyncpg.Connection, event_ids: Sequence[UUID], schema: str = DEFAULT_SCHEMA
) -> set[str]:
    """Which of ``event_ids`` the archive holds (the events applied), as text."""
    if not event_ids:
        return set()
    return {r["event_id"] for r in await conn.fetch(*_ARCHIVED_IDS.bind(schema, event_id=list(event_ids)))}


_BODIES_KNOWN_AT: Final = Statement(
    select(tables.event_archive.c.body)
    .where(
        tables.event_archive.c.department == any_(bindparam("departments", type_=ARRAY(Text))),
        literal_column(LOGGED_AT) <= bindparam("known_at", type_=tables.event_archive.c.logged_at.type),
    )
    .order_by(tables.event_archive.c.citizen_id, tables.event_archive.c.department, tables.event_archive.c.chain_seq)
)


async def load_bodies_known_at(
    conn: asyncpg.Connection, known_at: datetime, departments: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> list[bytes]:
    """Every archived body of ``departments`` the log held by ``known_at`` (``LOGGED_AT``), by citizen, then per
    department in chain order: the whole archive as known then, for the statistics cut at an instant."""
    rows = await conn.fetch(*_BODIES_KNOWN_AT.bind(schema, known_at=known_at, departments=list(departments)))
    return [bytes(r["body"]) for r in rows]


async def load_archive_rows(
    conn: asyncpg.Connection, numbers: Sequence[str], departments: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """Every archived row of a person's ``numbers`` (the current one first) in ``departments``, with its log
    coordinates and chain links: per department, the current number's chain first, each chain in order."""
    return list(
        await conn.fetch(
            *_ARCHIVE_ROWS.bind(schema, numbers=list(numbers), departments=list(departments), current=numbers[0])
        )
    )


_ARCHIVE_IN_BUSINESS_ORDER: Final = Statement(
    select(*(c for c in tables.event_archive.c if c.name != "logged_at"))
    .where(any_of(tables.event_archive.c.citizen_id, "numbers"))
    .order_by(
        tables.event_archive.c.occurred_at,
        tables.event_archive.c.recorded_at,
        tables.event_archive.c.department,
        tables.event_archive.c.chain_seq,
        tables.event_archive.c.citizen_id,
    )
)


async def load_archive_in_business_order(
    conn: asyncpg.Connection, numbers: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """Every archived row of a person's ``numbers``, every department, in business-time order (ties: recorded
    time, then department and chain order, then number): an operator's timeline of the person."""
    return list(await conn.fetch(*_ARCHIVE_IN_BUSINESS_ORDER.bind(schema, numbers=list(numbers))))


# --- the archive against the log (the operators' log check) ------------------------------------------------------
def _log_check_statements() -> tuple[Statement, Statement, Statement, Statement]:
    t, d = tables.event_archive, tables.dead_letters
    claim = select(
        t.c.topic,
        t.c.kafka_partition,
        t.c.kafka_offset,
        t.c.citizen_id,
        t.c.department,
        t.c.chain_seq,
        func.sha256(t.c.body).label("digest"),
    )
    by_coordinates = (t.c.topic, t.c.kafka_partition, t.c.kafka_offset, t.c.citizen_id, t.c.department, t.c.chain_seq)
    everything = claim.order_by(*by_coordinates)
    of_citizen = claim.where(t.c.citizen_id == bindparam("citizen_id", type_=Text)).order_by(*by_coordinates)
    chain_upto = claim.where(
        t.c.citizen_id == bindparam("citizen_id", type_=Text),
        t.c.department == bindparam("department", type_=Text),
        t.c.chain_seq <= bindparam("upto", type_=Integer),
    ).order_by(t.c.chain_seq)
    asked = unnest(d, "topic", "kafka_partition", "kafka_offset")
    dead = select(d.c.topic, d.c.kafka_partition, d.c.kafka_offset).join_from(
        d,
        asked,
        and_(
            d.c.topic == asked.c.topic,
            d.c.kafka_partition == asked.c.kafka_partition,
            d.c.kafka_offset == asked.c.kafka_offset,
        ),
    )
    return Statement(everything), Statement(of_citizen), Statement(chain_upto), Statement(dead)


_ARCHIVE_CLAIMS, _ARCHIVE_CLAIMS_OF, _CHAIN_CLAIMS_UPTO, _DEAD_LETTERS_AT = _log_check_statements()


def archive_claims(citizen_id: str | None, schema: str = DEFAULT_SCHEMA) -> tuple[Any, ...]:
    """The statement and arguments of every archive row's claim (one citizen's, when given) — its log
    coordinates, chain position and the SHA-256 of its body — in log order, for ``conn.cursor(*...)``: the
    archive is read as a stream, not held."""
    if citizen_id is None:
        return _ARCHIVE_CLAIMS.bind(schema)
    return _ARCHIVE_CLAIMS_OF.bind(schema, citizen_id=citizen_id)


async def chain_claims_upto(
    conn: asyncpg.Connection, citizen_id: str, department: str, upto: int, schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """The claims (as ``archive_claims``) of one chain's rows up to position ``upto``, in chain order."""
    return list(
        await conn.fetch(*_CHAIN_CLAIMS_UPTO.bind(schema, citizen_id=citizen_id, department=department, upto=upto))
    )


async def dead_letters_at(
    conn: asyncpg.Connection, coordinates: Sequence[tuple[str, int, int]], schema: str = DEFAULT_SCHEMA
) -> set[tuple[str, int, int]]:
    """Which of the log ``coordinates`` (topic, partition, offset) the dead letters hold."""
    rows = await conn.fetch(
        *_DEAD_LETTERS_AT.bind(
            schema,
            topic=[c[0] for c in coordinates],
            kafka_partition=[c[1] for c in coordinates],
            kafka_offset=[c[2] for c in coordinates],
        )
    )
    return {(r["topic"], r["kafka_partition"], r["kafka_offset"]) for r in rows}


_HOUSEHOLD: Final = Statement(
    select(*(c for c in tables.household_members.c if c.name != "household_id")).where(
        tables.household_members.c.household_id == bindparam("household_id", type_=Text)
    )
)


async def load_household(
    conn: asyncpg.Connection, household_id: str, schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """The members registered in ``household_id`` now: citizen, household type, relationship, region."""
    return list(await conn.fetch(*_HOUSEHOLD.bind(schema, household_id=household_id)))


def child_order(child: dict[str, Any]) -> tuple[str, str, str]:
    return (child.get("birth_date") or "", child.get("citizen_id") or "", child.get("certificate_no") or "")


def _resident_statements() -> tuple[Statement, Statement, Statement, Statement, Statement]:
    s, p, b = tables.sections, tables.parent_links, tables.birth_certificates
    found = bindparam("found", type_=ARRAY(Text))
    sections = select(*section_columns(s)).where(any_of(s.c.citizen_id, "found"))
    parents = (
        select(p.c.child_citizen_id, p.c.role, p.c.parent_citizen_id)
        .where(p.c.child_citizen_id == any_(found))
        .order_by(literal_column(PARENT_RANK))
    )
    children = select(p.c.child_citizen_id, p.c.parent_citizen_id).where(p.c.parent_citizen_id == any_(found))
    certificates = select(b).where(
        or_(
            b.c.mother_citizen_id == any_(found),
            b.c.father_citizen_id == any_(found),
            b.c.child_citizen_id == any_(found),
        )
    )
    x = tables.household_members.alias("x")
    m = tables.household_members.alias("m")
    households = (
        select(m.c.household_id, m.c.citizen_id, m.c.relationship, x.c.citizen_id.label("asked"))
        .join_from(x, m, m.c.household_id == x.c.household_id)
        .where(x.c.citizen_id == any_(found))
        .order_by(m.c.household_id, m.c.citizen_id)
    )
    return Statement(sections), Statement(parents), Statement(children), Statement(certificates), Statement(households)


_RESIDENT_SECTIONS, _RESIDENT_PARENTS, _RESIDENT_CHILDREN, _RESIDENT_CERTIFICATES, _RESIDENT_HOUSEHOLDS = (
    _resident_statements()
)


class ResidentRows:
    """The family rows read for one resident, folded by the rules of precedence as they arrive; ``resident`` makes
    the ``StoredResident``. Every reader of a resident (``load_residents`` for many, the query API's single read for
    one) feeds its rows here, so that the rules exist once:

    - a parent: public security's registration first, health's where it is silent (feed ``parent`` rows in
      ``PARENT_RANK`` order), then what a birth certificate names where both are silent (feed certificates after
      every parent row);
    - a child: each child the parent links name, completed by the certificates that name it (or, for a child not
      yet given a number, one entry per certificate);
    - the household: the members of the one registered household, in member order.
    """

    __slots__ = ("_children", "_household_id", "_members", "_parents", "citizen_id")

    def __init__(self, citizen_id: str) -> None:
        self.citizen_id = citizen_id
        self._parents: dict[str, str] = {}
        self._children: dict[str, dict[str, Any]] = {}
        self._household_id: str | None = None
        self._members: list[dict[str, str]] = []

    def parent(self, role: str, parent: str) -> None:
        """A parent link naming this resident's ``role`` (mother or father)."""
        self._parents.setdefault(role, parent)

    def child(self, child: str) -> None:
        """A parent link naming this resident as ``child``'s parent."""
        self._children[child] = {"citizen_id": child}

    def certificate(
        self,
        certificate_no: str,
        mother: str | None,
        father: str | None,
        child_name: str | None,
        child_sex: str | None,
        birth_date: date | str | None,
        child: str | None,
    ) -> None:
        """A birth certificate naming this resident as child, mother or father."""
        if child == self.citizen_id:
            if mother:
                self._parents.setdefault("mother", mother)
            if father:
                self._parents.setdefault("father", father)
        if self.citizen_id not in (mother, father):
            return
        entry = self._children.setdefault(child or f"certificate:{certificate_no}", {"citizen_id": child})
        stated = {
            "name": child_name,
            "sex": child_sex,
            "birth_date": birth_date.isoformat() if isinstance(birth_date, date) else birth_date,
            "certificate_no": certificate_no,
        }
        entry.update({k: v for k, v in stated.items() if v is not None})

    def member(self, household_id: str, citizen_id: str, relationship: str) -> None:
        """A member of this resident's household (feed them in ``(household_id, citizen_id)`` order)."""
        self._household_id = household_id
        self._members.append({"citizen_id": citizen_id, "relationship": relationship})

    def resident(self, sections: dict[str, SectionRow]) -> StoredResident:
        return StoredResident(
            citizen_id=self.citizen_id,
            sections=sections,
            mother=self._parents.get("mother"),
            father=self._parents.get("father"),
            children=sorted(self._children.values(), key=child_order),
            household_id=self._household_id,
            household_members=self._members,
        )


async def load_residents(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> dict[str, StoredResident]:
    """Sections, parents, children and household of ``citizen_ids``, in five queries whatever their number.

    Citizens with no stored section at all are absent from the result.
    """
    sections: dict[str, dict[str, SectionRow]] = {}
    for r in await conn.fetch(*_RESIDENT_SECTIONS.bind(schema, found=sorted(set(citizen_ids)))):
        sections.setdefault(r["citizen_id"], {})[r["department"]] = section_row(r)
    found = sorted(sections)
    rows = {cid: ResidentRows(cid) for cid in found}
    for r in await conn.fetch(*_RESIDENT_PARENTS.bind(schema, found=found)):
        rows[r["child_citizen_id"]].parent(r["role"], r["parent_citizen_id"])
    for r in await conn.fetch(*_RESIDENT_CHILDREN.bind(schema, found=found)):
        rows[r["parent_citizen_id"]].child(r["child_citizen_id"])
    for r in await conn.fetch(*_RESIDENT_CERTIFICATES.bind(schema, found=found)):
        named = (r["child_citizen_id"], r["mother_citizen_id"], r["father_citizen_id"])
        for cid in dict.fromkeys(n for n in named if n in rows):
            rows[cid].certificate(
                r["certificate_no"],
                r["mother_citizen_id"],
                r["father_citizen_id"],
                r["child_name"],
                r["child_sex"],
                r["birth_date"],
                r["child_citizen_id"],
            )
    for r in await conn.fetch(*_RESIDENT_HOUSEHOLDS.bind(schema, found=found)):
        rows[r["asked"]].member(r["household_id"], r["citizen_id"], r["relationship"])
    return {cid: rows[cid].resident(sections[cid]) for cid in found}


# --- the archive as of a date, as known at an instant (bitemporal reads) -----------------------------------------
_ARCHIVE_SLICE: Final = Statement(
    select(
        tables.event_archive.c.department,
        tables.event_archive.c.body,
        and_(
            tables.event_archive.c.occurred_at < bindparam("before", type_=tables.event_archive.c.occurred_at.type),
            or_(
                bindparam("known_at", type_=tables.event_archive.c.recorded_at.type).is_(None),
                tables.event_archive.c.recorded_at <= bindparam("known_at"),
            ),
        ).label("included"),
    )
    .where(any_of(tables.event_archive.c.citizen_id, "numbers"))
    .order_by(tables.event_archive.c.citizen_id, tables.event_archive.c.department, tables.event_archive.c.chain_seq)
)


async def load_archive_slice(
    conn: asyncpg.Connection,
    numbers: Sequence[str],
    before: datetime,
    known_at: datetime | None,
    schema: str = DEFAULT_SCHEMA,
) -> list[tuple[bytes, bool]]:
    """Every archived body of ``numbers`` in chain order, each with whether it falls in the slice: it happened
    before ``before`` and (when ``known_at`` is given) its department had recorded it by ``known_at``.

    PostgreSQL compares the instants: an archived timestamp may lie at the very edge of Python's calendar (archived
    before the register's bounds existed), where converting it — or the driver's decoding of it — cannot be
    trusted."""
    rows = await conn.fetch(*_ARCHIVE_SLICE.bind(schema, numbers=list(numbers), before=before, known_at=known_at))
    return [(bytes(r["body"]), bool(r["included"])) for r in rows]


# --- a resident's family as eligibility's facts name it ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatedParent:
    """A parent of the resident as the family tables state it, with the events that state it."""

    role: Literal["mother", "father"]
    citizen_id: str
    event_ids: tuple[str, ...]


def _family_statements() -> tuple[Statement, Statement, Statement, Statement]:
    p, b = tables.parent_links, tables.birth_certificates
    child = bindparam("child", type_=Text)
    links = (
        select(p.c.role, p.c.parent_citizen_id, cast(p.c.event_id, Text).label("event_id"))
        .where(p.c.child_citizen_id == child)
        .order_by(literal_column(PARENT_RANK), p.c.department)
    )
    certificates = (
        select(
            b.c.mother_citizen_id,
            b.c.father_citizen_id,
            cast(b.c.certified_event_id, Text).label("certified"),
            cast(b.c.registered_event_id, Text).label("registered"),
        )
        .where(b.c.child_citizen_id == child)
        .order_by(b.c.certificate_no)
    )
    numbers = bindparam("numbers", type_=ARRAY(Text))
    children = union(
        select(p.c.child_citizen_id).where(p.c.parent_citizen_id == any_(numbers)),
        select(b.c.child_citizen_id).where(
            b.c.child_citizen_id.is_not(None),
            or_(b.c.mother_citizen_id == any_(numbers), b.c.father_citizen_id == any_(numbers)),
        ),
    ).order_by(literal_column("1"))
    relationships = bindparam("relationships", type_=ARRAY(Text))
    x = tables.household_members.alias("x")
    m = tables.household_members.alias("m")
    household = (
        select(x.c.relationship.label("mine"), m.c.citizen_id, m.c.relationship.label("theirs"))
        .join_from(
            x,
            m,
            and_(
                m.c.household_id == x.c.household_id,
                m.c.citizen_id != x.c.citizen_id,
                m.c.relationship == any_(relationships),
            ),
        )
        .where(x.c.citizen_id == any_(numbers), x.c.relationship == any_(relationships))
        .order_by(m.c.citizen_id)
    )
    return Statement(links), Statement(certificates), Statement(children), Statement(household)


_PARENT_LINKS, _CERTIFIED_PARENTS, _CHILDREN_NAMED, _HOUSEHOLD_RELATIONS = _family_statements()


async def load_parent_links(
    conn: asyncpg.Connection, citizen_id: str, schema: str = DEFAULT_SCHEMA
) -> list[StatedParent]:
    """The resident's mother and father: public security's registration first, health's birth certificate where
    it is silent (the view's precedence), with the events that establish each link."""
    found: dict[str, tuple[str, list[str]]] = {}
    for row in await conn.fetch(*_PARENT_LINKS.bind(schema, child=citizen_id)):
        parent, ids = found.setdefault(row["role"], (row["parent_citizen_id"], []))
        if parent == row["parent_citizen_id"]:
            ids.append(row["event_id"])
    for row in await conn.fetch(*_CERTIFIED_PARENTS.bind(schema, child=citizen_id)):
        certificate_ids = [e for e in (row["registered"], row["certified"]) if e]
        for role in ("mother", "father"):
            parent = row[f"{role}_citizen_id"]
            if not parent:
                continue
            known, ids = found.setdefault(role, (parent, []))
            if known == parent:
                ids.extend(e for e in certificate_ids if e not in ids)
    roles: tuple[Literal["mother", "father"], ...] = ("mother", "father")
    return [StatedParent(role, found[role][0], tuple(dict.fromkeys(found[role][1]))) for role in roles if role in found]


async def load_children_named(
    conn: asyncpg.Connection, numbers: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> list[str]:
    """The children a parent link or a birth certificate names any of ``numbers`` a parent of, sorted."""
    return [r["child_citizen_id"] for r in await conn.fetch(*_CHILDREN_NAMED.bind(schema, numbers=list(numbers)))]


async def load_household_relations(
    conn: asyncpg.Connection,
    numbers: Sequence[str],
    relationships: Sequence[Relationship],
    schema: str = DEFAULT_SCHEMA,
) -> list[tuple[Relationship, str, Relationship]]:
    """``(mine, citizen_id, theirs)``: each other member of the households of ``numbers``, with both relationships
    to the head, where both are among ``relationships``; by member."""
    rows = await conn.fetch(
        *_HOUSEHOLD_RELATIONS.bind(schema, numbers=list(numbers), relationships=list(relationships))
    )
    return [(r["mine"], r["citizen_id"], r["theirs"]) for r in rows]


# --- what the view relay publishes -------------------------------------------------------------------------------
_PENDING_VIEWS: Final = Statement(
    select(tables.view_outbox.c.citizen_id, tables.view_outbox.c.enqueued_at)
    .order_by(tables.view_outbox.c.enqueued_at)
    .limit(bindparam("limit", type_=Integer))
)
_CITIZENS_AFTER: Final = Statement(
    select(tables.sections.c.citizen_id)
    .distinct()
    .where(tables.sections.c.citizen_id > bindparam("after", type_=Text))
    .order_by(tables.sections.c.citizen_id)
    .limit(bindparam("limit", type_=Integer))
)


async def pending_views(
    conn: asyncpg.Connection, limit: int, schema: str = DEFAULT_SCHEMA
) -> list[tuple[str, datetime]]:
    """The oldest ``limit`` citizens whose view waits to be published, each with when it was queued."""
    return [(r["citizen_id"], r["enqueued_at"]) for r in await conn.fetch(*_PENDING_VIEWS.bind(schema, limit=limit))]


async def citizens_after(conn: asyncpg.Connection, after: str, limit: int, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """The next ``limit`` citizens with a stored section, by number, after ``after`` (a backfill's cursor)."""
    rows = await conn.fetch(*_CITIZENS_AFTER.bind(schema, after=after, limit=limit))
    return [r["citizen_id"] for r in rows]
