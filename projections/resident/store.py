"""PostgreSQL I/O of the resident-view projection: the only module of the projection that touches a database.

``PostgresProjectionStore`` is the projector's ``batch.ProjectionStore``; the functions below it read residents
for rendering. Every function takes an open asyncpg connection inside the caller's transaction, so that the
archive rows, the sections, the family and household tables and the checkpoints of one batch commit together or
not at all.
Bulk paths only: one statement per table per batch (``COPY`` for the archive, ``unnest`` upserts for the rest).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from projections.resident.aliases import NumberLink, People
from projections.resident.batch import (
    ArchiveRow,
    BatchWrite,
    DeadLetterRow,
    Household,
    ParentLinkRow,
    SectionRow,
)
from projections.resident.family import CertificateRecord, CertificateStatement, FamilyView, merge_certificates

DEFAULT_SCHEMA = "projection"
PROJECTION = "resident_view"
VIEW_OUTBOX_CHANNEL = "renkou_view_outbox"  # NOTIFY channel: views are waiting to be published


ARCHIVE_COLUMNS: Final = (  # the archive table's columns, in ``batch.ArchiveRow``'s field order
    "citizen_id",
    "department",
    "chain_seq",
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "body",
    "prev_hash",
    "hash",
    "logged_at",
)


def safe_schema(schema: str) -> str:
    """``schema`` if it can be written into a statement as a schema name (letters, digits and ``_``), else a
    ``ValueError``: the one check before any ``{schema}.table`` is formatted into SQL."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


class PostgresProjectionStore:
    """``batch.ProjectionStore`` over asyncpg: the projection's tables in one schema (``projection`` live, another
    for a rebuild)."""

    def __init__(self, schema: str = DEFAULT_SCHEMA, projection: str = PROJECTION) -> None:
        self.schema = safe_schema(schema)
        self.projection = projection

    # --- checkpoints -------------------------------------------------------------------------------------------
    async def read_checkpoints(self, conn: asyncpg.Connection, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        rows = await conn.fetch(
            f"SELECT topic, kafka_partition, next_offset FROM {self.schema}.checkpoints "
            "WHERE projection = $1 AND topic = ANY($2::text[])",
            self.projection,
            list(topics),
        )
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    async def lock_checkpoints(
        self, conn: asyncpg.Connection, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Lock the checkpoint rows of ``partitions`` for this transaction and return their next offsets.

        The row lock is the fence: a projector that lost a partition in a rebalance but still holds a batch
        waits here, then sees the new owner's offset and applies nothing below it.
        """
        topics = [t for t, _ in partitions]
        parts = [p for _, p in partitions]
        await conn.execute(
            f"INSERT INTO {self.schema}.checkpoints (projection, topic, kafka_partition, next_offset) "
            "SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS k(t, p) ON CONFLICT DO NOTHING",
            self.projection,
            topics,
            parts,
        )
        rows = await conn.fetch(
            f"SELECT c.topic, c.kafka_partition, c.next_offset FROM {self.schema}.checkpoints c "
            "JOIN unnest($2::text[], $3::int[]) AS k(t, p) ON c.topic = k.t AND c.kafka_partition = k.p "
            "WHERE c.projection = $1 ORDER BY c.topic, c.kafka_partition FOR UPDATE OF c",
            self.projection,
            topics,
            parts,
        )
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    # --- reads for a batch -------------------------------------------------------------------------------------
    async def archived_bodies(self, conn: asyncpg.Connection, event_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """The canonical bodies of those ``event_ids`` already archived (for duplicate detection)."""
        if not event_ids:
            return {}
        rows = await conn.fetch(
            f"SELECT event_id, body FROM {self.schema}.event_archive WHERE event_id = ANY($1::uuid[])",
            list(event_ids),
        )
        return {r["event_id"]: bytes(r["body"]) for r in rows}

    async def load_sections(
        self, conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], SectionRow]:
        """The stored sections for ``(citizen_id, department)`` keys, in one query."""
        if not keys:
            return {}
        rows = await conn.fetch(
            f"SELECT s.citizen_id, s.department, s.state::text AS state, s.event_count, s.last_event_at, "
            f"s.chain_seq, s.chain_head FROM {self.schema}.sections s "
            "JOIN unnest($1::text[], $2::text[]) AS k(c, d) ON s.citizen_id = k.c AND s.department = k.d",
            [c for c, _ in keys],
            [d for _, d in keys],
        )
        return {
            (r["citizen_id"], r["department"]): SectionRow(
                r["citizen_id"],
                r["department"],
                r["state"],
                r["event_count"],
                r["last_event_at"],
                r["chain_seq"],
                bytes(r["chain_head"]),
            )
            for r in rows
        }

    # --- the batch write ---------------------------------------------------------------------------------------
    async def write(self, conn: asyncpg.Connection, batch: BatchWrite) -> None:
        """Write one batch, one statement per table; the caller's transaction makes it all-or-nothing."""
        if batch.archive:
            await self._write_archive(conn, batch.archive)
        if batch.sections:
            await self._write_sections(conn, batch.sections)
        if batch.parent_links:
            await self._write_parent_links(conn, batch.parent_links)
        if batch.number_links:
            await self._write_number_links(conn, batch.number_links)
        if batch.certificates:
            await self._write_certificates(conn, batch.certificates)
        if batch.households:
            await self._write_households(conn, batch.households)
        if batch.dead_letters:
            await self._write_dead_letters(conn, batch.dead_letters)
        if batch.changed_citizens:
            await self._queue_views(conn, batch.changed_citizens)
        if batch.checkpoints:
            await self._write_checkpoints(conn, batch.checkpoints)

    async def _write_archive(self, conn: asyncpg.Connection, rows: Sequence[ArchiveRow]) -> None:
        """Appended by ``COPY``: an ArchiveRow is a tuple in column order, so the rows go as they are."""
        await conn.copy_records_to_table(
            "event_archive", schema_name=self.schema, columns=ARCHIVE_COLUMNS, records=rows
        )

    async def _write_sections(self, conn: asyncpg.Connection, rows: Sequence[SectionRow]) -> None:
        """Each section touched, replaced whole (state, counters, chain head)."""
        await conn.execute(
            f"INSERT INTO {self.schema}.sections AS t (citizen_id, department, state, event_count, last_event_at, "
            "chain_seq, chain_head) "
            "SELECT c, d, st::jsonb, n, l, q, h FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], "
            "$5::timestamptz[], $6::int[], $7::bytea[]) AS u(c, d, st, n, l, q, h) "
            "ON CONFLICT (citizen_id, department) DO UPDATE SET state = EXCLUDED.state, "
            "event_count = EXCLUDED.event_count, last_event_at = EXCLUDED.last_event_at, "
            "chain_seq = EXCLUDED.chain_seq, chain_head = EXCLUDED.chain_head",
            [r.citizen_id for r in rows],
            [r.department for r in rows],
            [r.state for r in rows],
            [r.event_count for r in rows],
            [r.last_event_at for r in rows],
            [r.chain_seq for r in rows],
            [r.chain_head for r in rows],
        )

    async def _write_parent_links(self, conn: asyncpg.Connection, rows: Sequence[ParentLinkRow]) -> None:
        """A child's parent as one department states it, replaced by its latest statement."""
        await conn.execute(
            f"INSERT INTO {self.schema}.parent_links AS t (child_citizen_id, role, department, parent_citizen_id, "
            "event_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[]) "
            "ON CONFLICT (child_citizen_id, role, department) DO UPDATE SET "
            "parent_citizen_id = EXCLUDED.parent_citizen_id, event_id = EXCLUDED.event_id",
            [x.child_citizen_id for x in rows],
            [x.role for x in rows],
            [x.department for x in rows],
            [x.parent_citizen_id for x in rows],
            [x.event_id for x in rows],
        )

    async def _write_number_links(self, conn: asyncpg.Connection, rows: Sequence[NumberLink]) -> None:
        """The later link of a number stands (by date, then event ID), whichever arrived first: the rule of
        ``aliases.standing``, which the memory store applies and the contract suite holds this statement to."""
        await conn.execute(
            f"INSERT INTO {self.schema}.number_links AS t (old_citizen_id, new_citizen_id, linked_on, event_id, kind, "
            "reason) SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::uuid[], $5::text[], $6::text[]) "
            "ON CONFLICT (old_citizen_id) DO UPDATE SET new_citizen_id = EXCLUDED.new_citizen_id, "
            "linked_on = EXCLUDED.linked_on, event_id = EXCLUDED.event_id, kind = EXCLUDED.kind, "
            "reason = EXCLUDED.reason WHERE (EXCLUDED.linked_on, EXCLUDED.event_id) > (t.linked_on, t.event_id)",
            [x.old for x in rows],
            [x.new for x in rows],
            [x.linked_on for x in rows],
            [x.event_id for x in rows],
            [x.kind for x in rows],
            [x.reason for x in rows],
        )

    async def _write_households(self, conn: asyncpg.Connection, rows: Mapping[str, Household | None]) -> None:
        """Membership now: removed for a citizen no longer in a household, replaced otherwise."""
        present = [h for h in rows.values() if h is not None]
        gone = [c for c, h in rows.items() if h is None]
        if gone:
            await conn.execute(f"DELETE FROM {self.schema}.household_members WHERE citizen_id = ANY($1::text[])", gone)
        if present:
            await conn.execute(
                f"INSERT INTO {self.schema}.household_members AS t (citizen_id, household_id, household_type, "
                "relationship, region_code) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                "$4::text[], $5::text[]) ON CONFLICT (citizen_id) DO UPDATE SET "
                "household_id = EXCLUDED.household_id, household_type = EXCLUDED.household_type, "
                "relationship = EXCLUDED.relationship, region_code = EXCLUDED.region_code",
                [h.citizen_id for h in present],
                [h.household_id for h in present],
                [h.household_type for h in present],
                [h.relationship for h in present],
                [h.region_code for h in present],
            )

    async def _write_dead_letters(self, conn: asyncpg.Connection, rows: Sequence[DeadLetterRow]) -> None:
        """The first dead letter at a record's coordinates is kept (a redelivery adds nothing)."""
        await conn.execute(
            f"INSERT INTO {self.schema}.dead_letters (topic, kafka_partition, kafka_offset, reason, record_key, "
            "record_value, event_id, value_size) SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], "
            "$4::text[], $5::bytea[], $6::bytea[], $7::text[], $8::bigint[]) ON CONFLICT DO NOTHING",
            [d.topic for d in rows],
            [d.partition for d in rows],
            [d.offset for d in rows],
            [d.reason for d in rows],
            [d.key for d in rows],
            [d.value for d in rows],
            [d.event_id for d in rows],
            [d.value_size for d in rows],
        )

    async def _queue_views(self, conn: asyncpg.Connection, rows: Collection[str]) -> None:
        """Changed citizens queued for the view relay, woken at commit (never for a rolled-back batch)."""
        await conn.execute(
            f"INSERT INTO {self.schema}.view_outbox (citizen_id, enqueued_at) "
            "SELECT unnest($1::text[]), clock_timestamp() "
            "ON CONFLICT (citizen_id) DO UPDATE SET enqueued_at = EXCLUDED.enqueued_at",
            sorted(rows),
        )
        await conn.execute("SELECT pg_notify($1, '')", VIEW_OUTBOX_CHANNEL)

    async def _write_checkpoints(self, conn: asyncpg.Connection, rows: Mapping[tuple[str, int], int]) -> None:
        """The next offset of each partition (rows created, and locked, by ``lock_checkpoints``)."""
        items = sorted(rows.items())
        await conn.execute(
            f"UPDATE {self.schema}.checkpoints c SET next_offset = k.o, updated_at = now() "
            "FROM unnest($2::text[], $3::int[], $4::bigint[]) AS k(t, p, o) "
            "WHERE c.projection = $1 AND c.topic = k.t AND c.kafka_partition = k.p",
            self.projection,
            [t for (t, _), _ in items],
            [p for (_, p), _ in items],
            [o for _, o in items],
        )

    async def _write_certificates(self, conn: asyncpg.Connection, records: Sequence[CertificateRecord]) -> None:
        # Read, merge, write back — with the rows locked: the two statements of one birth come from different
        # partitions, so two projector workers may hold the same certificate at once. The merge is
        # ``family.merge_certificates`` (order-independent), the only rule there is; the locks are taken in key
        # order (the INSERT's ORDER BY), so two workers never wait for each other in a cycle.
        keys = sorted(r.key for r in records)
        stored = await conn.fetch(
            f"INSERT INTO {self.schema}.birth_certificates AS t (certificate_no, mother_citizen_id) "
            "SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1, 2 "
            "ON CONFLICT (certificate_no, mother_citizen_id) DO UPDATE SET certificate_no = t.certificate_no "
            f"RETURNING {', '.join(f't.{c}' for c in _CERTIFICATE_COLUMNS)}",
            [n for n, _ in keys],
            [m for _, m in keys],
        )
        merged = {r.key: r for r in records}
        for row in stored:
            previous = certificate_of(row)
            if previous is not None:
                merged[previous.key] = merge_certificates(previous, merged[previous.key])
        rows = [_certificate_row(merged[key]) for key in keys]
        columns = _CERTIFICATE_COLUMNS[2:]
        types = [_CERTIFICATE_TYPES[c] for c in _CERTIFICATE_COLUMNS]
        await conn.execute(
            f"UPDATE {self.schema}.birth_certificates AS t SET "
            + ", ".join(f"{c} = u.{c}" for c in columns)
            + " FROM unnest("
            + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
            + f") AS u({', '.join(_CERTIFICATE_COLUMNS)}) "
            "WHERE t.certificate_no = u.certificate_no AND t.mother_citizen_id = u.mother_citizen_id",
            *[[row[i] for row in rows] for i in range(len(_CERTIFICATE_COLUMNS))],
        )


# The table's columns: the key, what the two departments say together (what readers use), then each department's
# latest statement (what the next merge needs).
_CERTIFICATE_TYPES: Final = {
    "certificate_no": "text",
    "mother_citizen_id": "text",
    "father_citizen_id": "text",
    "child_name": "text",
    "child_sex": "text",
    "birth_date": "date",
    "child_citizen_id": "text",
    "registered_event_id": "uuid",
    "certified_event_id": "uuid",
    "registered_at": "timestamptz",
    "registered_father_citizen_id": "text",
    "registered_child_name": "text",
    "registered_child_sex": "text",
    "registered_birth_date": "date",
    "certified_at": "timestamptz",
    "certified_father_citizen_id": "text",
    "certified_child_name": "text",
    "certified_child_sex": "text",
    "certified_birth_date": "date",
}
_CERTIFICATE_COLUMNS: Final = tuple(_CERTIFICATE_TYPES)


def _certificate_row(record: CertificateRecord) -> tuple[Any, ...]:
    """``record`` as a row in ``_CERTIFICATE_COLUMNS`` order."""
    sides = tuple(
        value
        for s in (record.registration, record.certification)
        for value in (
            (s.recorded_at, s.father_citizen_id, s.child_name, s.child_sex, s.birth_date) if s else (None,) * 5
        )
    )
    return (
        record.certificate_no,
        record.mother_citizen_id,
        record.father_citizen_id,
        record.child_name,
        record.child_sex,
        record.birth_date,
        record.child_citizen_id,
        record.registered_event_id,
        record.certified_event_id,
        *sides,
    )


def certificate_of(row: asyncpg.Record) -> CertificateRecord | None:
    """The stored record of a row, ``None`` for a row just inserted (no statement yet)."""
    registration = certification = None
    if row["registered_event_id"] is not None:
        registration = CertificateStatement(
            row["registered_event_id"],
            row["registered_at"],
            row["registered_father_citizen_id"],
            row["registered_child_name"],
            row["registered_child_sex"],
            row["registered_birth_date"],
            row["child_citizen_id"],
        )
    if row["certified_event_id"] is not None:
        certification = CertificateStatement(
            row["certified_event_id"],
            row["certified_at"],
            row["certified_father_citizen_id"],
            row["certified_child_name"],
            row["certified_child_sex"],
            row["certified_birth_date"],
        )
    if registration is None and certification is None:
        return None
    return CertificateRecord(row["certificate_no"], row["mother_citizen_id"], registration, certification)


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
        for r in await conn.fetch(
            f"SELECT {_LINK_COLUMNS} FROM {schema}.number_links "
            "WHERE old_citizen_id = ANY($1::text[]) OR new_citizen_id = ANY($1::text[])",
            ask,
        ):
            link = _link(r)
            links[link.old] = link
            frontier.update((link.old, link.new))
    return People(links.values())


async def person_numbers(conn: asyncpg.Connection, number: str, schema: str = DEFAULT_SCHEMA) -> tuple[str, ...]:
    """Every number of ``number``'s person, the current one first (``People.numbers``): ``(number,)`` for most."""
    return (await load_links(conn, [number], schema)).numbers(number)


async def load_all_links(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> People:
    """Every link of the projection, resolved (statistics count every person with several numbers once)."""
    return People(_link(r) for r in await conn.fetch(f"SELECT {_LINK_COLUMNS} FROM {schema}.number_links"))


PARENT_RANK: Final = "(department <> 'public_security')::int"
"""SQL over ``parent_links``: which department's statement of a parent counts, the lowest first — public
security's registration is authoritative (0), health's birth certificate fills in where it is silent (1). The one
precedence the view, the single read and eligibility's facts follow."""

LOGGED_AT: Final = "coalesce(logged_at, recorded_at)"
"""SQL: when the log learnt of an archived event — the broker's stamp (migration 0018); for a row without one
(archived before it, or from a topic the broker did not stamp) the department's recorded time, which a replay
keeps (the archive time would not survive one)."""


async def load_links_known_at(conn: asyncpg.Connection, known_at: datetime, schema: str = DEFAULT_SCHEMA) -> People:
    """The links whose event the log held by ``known_at`` (``event_archive.logged_at``, else its archive time),
    resolved: who was whom as the system knew it then."""
    rows = await conn.fetch(
        f"SELECT {_LINK_COLUMNS} FROM {schema}.number_links WHERE event_id IN "
        f"(SELECT event_id FROM {schema}.event_archive WHERE {LOGGED_AT} <= $1)",
        known_at,
    )
    return People(_link(r) for r in rows)


def _link(r: asyncpg.Record) -> NumberLink:
    return NumberLink(r["old_citizen_id"], r["new_citizen_id"], r["linked_on"], r["event_id"], r["kind"], r["reason"])


_LINK_COLUMNS: Final = "old_citizen_id, new_citizen_id, linked_on, event_id::text AS event_id, kind, reason"
_MAX_LINK_ROUNDS: Final = 8  # a person with more numbers than this is not a data error renkou can resolve


async def load_archived_bodies(
    conn: asyncpg.Connection,
    citizen_ids: Sequence[str],
    departments: Sequence[str] | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> dict[str, list[bytes]]:
    """The archived event bodies of each of ``citizen_ids`` (of ``departments`` only, if given), per department in
    chain (log) order; citizens without any are absent."""
    rows = await conn.fetch(
        f"SELECT citizen_id, body FROM {schema}.event_archive WHERE citizen_id = ANY($1::text[]) "
        "AND ($2::text[] IS NULL OR department = ANY($2::text[])) ORDER BY citizen_id, department, chain_seq",
        sorted(set(citizen_ids)),
        None if departments is None else list(departments),
    )
    bodies: dict[str, list[bytes]] = {}
    for row in rows:
        bodies.setdefault(row["citizen_id"], []).append(bytes(row["body"]))
    return bodies


async def load_archive_rows(
    conn: asyncpg.Connection, numbers: Sequence[str], departments: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """Every archived row of a person's ``numbers`` (the current one first) in ``departments``, with its log
    coordinates and chain links: per department, the current number's chain first, each chain in order."""
    return list(
        await conn.fetch(
            "SELECT citizen_id, department, chain_seq, event_id, event_type, schema_version, occurred_at, "
            "recorded_at, topic, kafka_partition, kafka_offset, archived_at, body, prev_hash, hash "
            f"FROM {schema}.event_archive WHERE citizen_id = ANY($1::text[]) AND department = ANY($2::text[]) "
            "ORDER BY department, citizen_id <> $3, citizen_id, chain_seq",
            list(numbers),
            list(departments),
            numbers[0],
        )
    )


async def load_household(
    conn: asyncpg.Connection, household_id: str, schema: str = DEFAULT_SCHEMA
) -> list[asyncpg.Record]:
    """The members registered in ``household_id`` now: citizen, household type, relationship, region."""
    return list(
        await conn.fetch(
            f"SELECT citizen_id, household_type, relationship, region_code FROM {schema}.household_members "
            "WHERE household_id = $1",
            household_id,
        )
    )


def child_order(child: dict[str, Any]) -> tuple[str, str, str]:
    return (child.get("birth_date") or "", child.get("citizen_id") or "", child.get("certificate_no") or "")


async def load_residents(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], schema: str = DEFAULT_SCHEMA
) -> dict[str, StoredResident]:
    """Sections, parents, children and household of ``citizen_ids``, in five queries whatever their number.

    Citizens with no stored section at all are absent from the result.
    """
    ids = sorted(set(citizen_ids))
    rows = await conn.fetch(
        f"SELECT citizen_id, department, state::text AS state, event_count, last_event_at, chain_seq, chain_head "
        f"FROM {schema}.sections WHERE citizen_id = ANY($1::text[])",
        ids,
    )
    sections: dict[str, dict[str, SectionRow]] = {}
    for r in rows:
        sections.setdefault(r["citizen_id"], {})[r["department"]] = SectionRow(
            r["citizen_id"],
            r["department"],
            r["state"],
            r["event_count"],
            r["last_event_at"],
            r["chain_seq"],
            bytes(r["chain_head"]),
        )
    found = sorted(sections)
    # Parents: public security's registration is authoritative; health's certificate fills in where it is silent.
    parents: dict[str, dict[str, str]] = {}
    for r in await conn.fetch(
        f"SELECT child_citizen_id, role, parent_citizen_id FROM {schema}.parent_links "
        f"WHERE child_citizen_id = ANY($1::text[]) ORDER BY {PARENT_RANK}",
        found,
    ):
        parents.setdefault(r["child_citizen_id"], {}).setdefault(r["role"], r["parent_citizen_id"])
    children: dict[str, dict[str, dict[str, Any]]] = {}
    for r in await conn.fetch(
        f"SELECT child_citizen_id, parent_citizen_id FROM {schema}.parent_links "
        "WHERE parent_citizen_id = ANY($1::text[])",
        found,
    ):
        children.setdefault(r["parent_citizen_id"], {})[r["child_citizen_id"]] = {"citizen_id": r["child_citizen_id"]}
    for r in await conn.fetch(
        f"SELECT * FROM {schema}.birth_certificates WHERE mother_citizen_id = ANY($1::text[]) "
        "OR father_citizen_id = ANY($1::text[]) OR child_citizen_id = ANY($1::text[])",
        found,
    ):
        child = r["child_citizen_id"]
        if child in sections:
            mine = parents.setdefault(child, {})
            if r["mother_citizen_id"]:
                mine.setdefault("mother", r["mother_citizen_id"])
            if r["father_citizen_id"]:
                mine.setdefault("father", r["father_citizen_id"])
        for parent in (r["mother_citizen_id"], r["father_citizen_id"]):
            if parent in sections:
                key = child or f"certificate:{r['certificate_no']}"
                entry = children.setdefault(parent, {}).setdefault(key, {"citizen_id": child})
                entry.update(
                    {
                        k: v
                        for k, v in {
                            "name": r["child_name"],
                            "sex": r["child_sex"],
                            "birth_date": r["birth_date"].isoformat() if r["birth_date"] else None,
                            "certificate_no": r["certificate_no"],
                        }.items()
                        if v is not None
                    }
                )
    households: dict[str, str] = {}
    members: dict[str, list[dict[str, str]]] = {}
    for r in await conn.fetch(
        f"SELECT m.household_id, m.citizen_id, m.relationship, x.citizen_id AS asked FROM {schema}.household_members x "
        f"JOIN {schema}.household_members m ON m.household_id = x.household_id WHERE x.citizen_id = ANY($1::text[]) "
        "ORDER BY m.household_id, m.citizen_id",
        found,
    ):
        households[r["asked"]] = r["household_id"]
        members.setdefault(r["asked"], []).append({"citizen_id": r["citizen_id"], "relationship": r["relationship"]})
    return {
        cid: StoredResident(
            citizen_id=cid,
            sections=sections[cid],
            mother=parents.get(cid, {}).get("mother"),
            father=parents.get(cid, {}).get("father"),
            children=sorted(children.get(cid, {}).values(), key=child_order),
            household_id=households.get(cid),
            household_members=members.get(cid, []),
        )
        for cid in found
    }
