"""The write store: how the resident-view projection's tables are written (``reads`` is how they are read).

``PostgresProjectionStore`` is the projector's ``batch.ProjectionStore``; ``clear_views`` is the view relay's one
write. Every statement is declared on ``tables`` and compiled once per schema (the live one, or a shadow being
rebuilt), and each takes an open asyncpg connection inside the caller's transaction, so that the archive rows, the
sections, the family and household tables and the checkpoints of one batch commit together or not at all.
Bulk paths only: one statement per table per batch (``COPY`` for the archive, ``unnest`` upserts for the rest).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from projections.resident import tables
from projections.resident.aliases import NumberLink
from projections.resident.batch import (
    ArchiveRow,
    BatchWrite,
    DeadLetterRow,
    Household,
    ParentLinkRow,
    SectionRow,
)
from projections.resident.family import CertificateRecord, CertificateStatement, merge_certificates
from projections.resident.reads import PROJECTION, read_checkpoints, section_columns, section_row
from projections.resident.tables import DEFAULT_SCHEMA, Statement, any_of, safe_schema, unnest

VIEW_OUTBOX_CHANNEL = "renkou_view_outbox"  # NOTIFY channel: views are waiting to be published

_COORDINATES: Final = {"kafka_partition": "partition", "kafka_offset": "offset"}
"""A record's coordinates: the tables' columns, and the fields of the rows that carry them."""

ARCHIVE_COLUMNS: Final = tuple({f: c for c, f in _COORDINATES.items()}.get(f, f) for f in ArchiveRow._fields)
"""The archive table's columns in ``batch.ArchiveRow``'s field order (what ``COPY`` appends)."""


# --- the statements of a batch, declared on ``tables`` and compiled once per schema ------------------------------
def _checkpoint_statements() -> tuple[Statement, Statement, Statement]:
    t = tables.checkpoints
    projection = bindparam("projection", type_=Text)
    u = unnest(t, "topic", "kafka_partition")
    create = (
        pg_insert(t)
        .from_select(
            ["projection", "topic", "kafka_partition", "next_offset"],
            select(projection, u.c.topic, u.c.kafka_partition, literal_column("0")),
        )
        .on_conflict_do_nothing()
    )
    lock = (
        select(t.c.topic, t.c.kafka_partition, t.c.next_offset)
        .join(u, and_(t.c.topic == u.c.topic, t.c.kafka_partition == u.c.kafka_partition))
        .where(t.c.projection == projection)
        .order_by(t.c.topic, t.c.kafka_partition)
        .with_for_update(of=t)
    )
    moved = unnest(t, "topic", "kafka_partition", "next_offset")
    advance = (
        update(t)
        .values(next_offset=moved.c.next_offset, updated_at=func.now())
        .where(t.c.projection == projection, t.c.topic == moved.c.topic, t.c.kafka_partition == moved.c.kafka_partition)
    )
    return Statement(create), Statement(lock), Statement(advance)


_CREATE_CHECKPOINTS, _LOCK_CHECKPOINTS, _ADVANCE_CHECKPOINTS = _checkpoint_statements()

_ARCHIVED_BODIES: Final = Statement(
    select(tables.event_archive.c.event_id, tables.event_archive.c.body).where(any_of(tables.event_archive.c.event_id))
)


def _load_sections() -> Statement:
    t = tables.sections
    keys = unnest(t, "citizen_id", "department")
    return Statement(
        select(*section_columns(t)).join(
            keys, and_(t.c.citizen_id == keys.c.citizen_id, t.c.department == keys.c.department)
        )
    )


def _arrays(rows: Sequence[Any], table: Table, columns: Sequence[str] = (), **fields: str) -> dict[str, list[Any]]:
    """One array per column of ``table`` (``columns`` only, if given) from ``rows``: each row's attribute of the
    column's name, or of the name ``fields`` gives for it — the parameters of an ``unnest`` statement."""
    return {c: [getattr(r, fields.get(c, c)) for r in rows] for c in columns or [c.name for c in table.c]}


def _upsert(table: Table, where: ColumnElement[bool] | None = None) -> Statement:
    """Rows of ``table`` from one array per column, each replacing the row of its primary key (only ``where`` that
    holds, if given)."""
    names = [c.name for c in table.c]
    rows = unnest(table, *names)
    key = [c.name for c in table.primary_key]
    statement = pg_insert(table).from_select(names, select(rows))
    return Statement(
        statement.on_conflict_do_update(
            index_elements=key,
            set_={n: statement.excluded[n] for n in names if n not in key},
            where=where,
        )
    )


_LOAD_SECTIONS: Final = _load_sections()
_WRITE_SECTIONS: Final = _upsert(tables.sections)
_WRITE_PARENT_LINKS: Final = _upsert(tables.parent_links)
_WRITE_NUMBER_LINKS: Final = _upsert(
    tables.number_links,
    # The later link of a number stands (by date, then event ID), whichever arrived first.
    where=tuple_(pg_insert(tables.number_links).excluded.linked_on, pg_insert(tables.number_links).excluded.event_id)
    > tuple_(tables.number_links.c.linked_on, tables.number_links.c.event_id),
)
_WRITE_HOUSEHOLDS: Final = _upsert(tables.household_members)
_LEAVE_HOUSEHOLDS: Final = Statement(
    delete(tables.household_members).where(any_of(tables.household_members.c.citizen_id))
)
_DEAD_LETTER_COLUMNS: Final = (
    "topic",
    "kafka_partition",
    "kafka_offset",
    "reason",
    "record_key",
    "record_value",
    "event_id",
    "value_size",
)
_WRITE_DEAD_LETTERS: Final = Statement(
    pg_insert(tables.dead_letters)
    .from_select(list(_DEAD_LETTER_COLUMNS), select(unnest(tables.dead_letters, *_DEAD_LETTER_COLUMNS)))
    .on_conflict_do_nothing()
)


def _queue_views_statement() -> Statement:
    t = tables.view_outbox
    statement = pg_insert(t).from_select(
        ["citizen_id", "enqueued_at"],
        select(func.unnest(bindparam("citizen_id", type_=ARRAY(Text))), func.clock_timestamp()),
    )
    return Statement(
        statement.on_conflict_do_update(
            index_elements=["citizen_id"], set_={"enqueued_at": statement.excluded.enqueued_at}
        )
    )


_QUEUE_VIEWS: Final = _queue_views_statement()

_PUBLISHED = unnest(tables.view_outbox, "citizen_id", "enqueued_at")
_CLEAR_VIEWS: Final = Statement(
    delete(tables.view_outbox).where(
        tables.view_outbox.c.citizen_id == _PUBLISHED.c.citizen_id,
        tables.view_outbox.c.enqueued_at == _PUBLISHED.c.enqueued_at,
    )
)


async def clear_views(conn: asyncpg.Connection, published: Sequence[tuple[str, datetime]], schema: str) -> None:
    """Take the published views off the outbox: only the rows as they were read (``reads.pending_views``), so that
    a change queued meanwhile keeps its row and is published next round."""
    await conn.execute(
        *_CLEAR_VIEWS.bind(schema, citizen_id=[c for c, _ in published], enqueued_at=[t for _, t in published])
    )


_CERTIFICATE_COLUMNS: Final = tuple(c.name for c in tables.birth_certificates.c)


def _certificate_statements() -> tuple[Statement, Statement]:
    t = tables.birth_certificates
    keys = unnest(t, "certificate_no", "mother_citizen_id")
    insert = pg_insert(t).from_select(
        ["certificate_no", "mother_citizen_id"],
        select(keys).order_by(keys.c.certificate_no, keys.c.mother_citizen_id),
    )
    # Every row of the keys, locked: a new one inserted, a stored one "updated" to itself.
    claim = insert.on_conflict_do_update(
        index_elements=["certificate_no", "mother_citizen_id"], set_={"certificate_no": t.c.certificate_no}
    ).returning(*t.c)
    rows = unnest(t, *_CERTIFICATE_COLUMNS)
    write = (
        update(t)
        .values({c: rows.c[c] for c in _CERTIFICATE_COLUMNS[2:]})
        .where(t.c.certificate_no == rows.c.certificate_no, t.c.mother_citizen_id == rows.c.mother_citizen_id)
    )
    return Statement(claim), Statement(write)


_CLAIM_CERTIFICATES, _WRITE_CERTIFICATES = _certificate_statements()


class PostgresProjectionStore:
    """``batch.ProjectionStore`` over asyncpg: the projection's tables in one schema (``projection`` live, another
    for a rebuild)."""

    def __init__(self, schema: str = DEFAULT_SCHEMA, projection: str = PROJECTION) -> None:
        self.schema = safe_schema(schema)
        self.projection = projection

    # --- checkpoints -------------------------------------------------------------------------------------------
    async def read_checkpoints(self, conn: asyncpg.Connection, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        return await read_checkpoints(conn, self.schema, topics, self.projection)

    async def lock_checkpoints(
        self, conn: asyncpg.Connection, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Lock the checkpoint rows of ``partitions`` for this transaction and return their next offsets.

        The row lock is the fence: a projector that lost a partition in a rebalance but still holds a batch
        waits here, then sees the new owner's offset and applies nothing below it.
        """
        keys: dict[str, Any] = {"projection": self.projection, "topic": [t for t, _ in partitions]}
        keys["kafka_partition"] = [p for _, p in partitions]
        await conn.execute(*_CREATE_CHECKPOINTS.bind(self.schema, **keys))
        rows = await conn.fetch(*_LOCK_CHECKPOINTS.bind(self.schema, **keys))
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    # --- reads for a batch -------------------------------------------------------------------------------------
    async def archived_bodies(self, conn: asyncpg.Connection, event_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """The canonical bodies of those ``event_ids`` already archived (for duplicate detection)."""
        if not event_ids:
            return {}
        rows = await conn.fetch(*_ARCHIVED_BODIES.bind(self.schema, event_id=list(event_ids)))
        return {r["event_id"]: bytes(r["body"]) for r in rows}

    async def load_sections(
        self, conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], SectionRow]:
        """The stored sections for ``(citizen_id, department)`` keys, in one query."""
        if not keys:
            return {}
        rows = await conn.fetch(
            *_LOAD_SECTIONS.bind(self.schema, citizen_id=[c for c, _ in keys], department=[d for _, d in keys])
        )
        return {(r["citizen_id"], r["department"]): section_row(r) for r in rows}

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
            tables.event_archive.name, schema_name=self.schema, columns=ARCHIVE_COLUMNS, records=rows
        )

    async def _write_sections(self, conn: asyncpg.Connection, rows: Sequence[SectionRow]) -> None:
        """Each section touched, replaced whole (state, counters, chain head)."""
        await conn.execute(*_WRITE_SECTIONS.bind(self.schema, **_arrays(rows, tables.sections)))

    async def _write_parent_links(self, conn: asyncpg.Connection, rows: Sequence[ParentLinkRow]) -> None:
        """A child's parent as one department states it, replaced by its latest statement."""
        await conn.execute(*_WRITE_PARENT_LINKS.bind(self.schema, **_arrays(rows, tables.parent_links)))

    async def _write_number_links(self, conn: asyncpg.Connection, rows: Sequence[NumberLink]) -> None:
        """The later link of a number stands (by date, then event ID), whichever arrived first: the rule of
        ``aliases.standing``, which the memory store applies and the contract suite holds this statement to."""
        links = _arrays(rows, tables.number_links, old_citizen_id="old", new_citizen_id="new")
        await conn.execute(*_WRITE_NUMBER_LINKS.bind(self.schema, **links))

    async def _write_households(self, conn: asyncpg.Connection, rows: Mapping[str, Household | None]) -> None:
        """Membership now: removed for a citizen no longer in a household, replaced otherwise."""
        present = [h for h in rows.values() if h is not None]
        gone = [c for c, h in rows.items() if h is None]
        if gone:
            await conn.execute(*_LEAVE_HOUSEHOLDS.bind(self.schema, citizen_id=gone))
        if present:
            await conn.execute(*_WRITE_HOUSEHOLDS.bind(self.schema, **_arrays(present, tables.household_members)))

    async def _write_dead_letters(self, conn: asyncpg.Connection, rows: Sequence[DeadLetterRow]) -> None:
        """The first dead letter at a record's coordinates is kept (a redelivery adds nothing)."""
        letters = _arrays(
            rows,
            tables.dead_letters,
            _DEAD_LETTER_COLUMNS,
            **_COORDINATES,
            record_key="key",
            record_value="value",
        )
        await conn.execute(*_WRITE_DEAD_LETTERS.bind(self.schema, **letters))

    async def _queue_views(self, conn: asyncpg.Connection, rows: Collection[str]) -> None:
        """Changed citizens queued for the view relay, woken at commit (never for a rolled-back batch)."""
        await conn.execute(*_QUEUE_VIEWS.bind(self.schema, citizen_id=sorted(rows)))
        await conn.execute("SELECT pg_notify($1, '')", VIEW_OUTBOX_CHANNEL)

    async def _write_checkpoints(self, conn: asyncpg.Connection, rows: Mapping[tuple[str, int], int]) -> None:
        """The next offset of each partition (rows created, and locked, by ``lock_checkpoints``)."""
        items = sorted(rows.items())
        await conn.execute(
            *_ADVANCE_CHECKPOINTS.bind(
                self.schema,
                projection=self.projection,
                topic=[t for (t, _), _ in items],
                kafka_partition=[p for (_, p), _ in items],
                next_offset=[o for _, o in items],
            )
        )

    async def _write_certificates(self, conn: asyncpg.Connection, records: Sequence[CertificateRecord]) -> None:
        # Read, merge, write back — with the rows locked: the two statements of one birth come from different
        # partitions, so two projector workers may hold the same certificate at once. The merge is
        # ``family.merge_certificates`` (order-independent), the only rule there is; the locks are taken in key
        # order (the INSERT's ORDER BY), so two workers never wait for each other in a cycle.
        keys = sorted(r.key for r in records)
        stored = await conn.fetch(
            *_CLAIM_CERTIFICATES.bind(
                self.schema, certificate_no=[n for n, _ in keys], mother_citizen_id=[m for _, m in keys]
            )
        )
        merged = {r.key: r for r in records}
        for row in stored:
            previous = certificate_of(row)
            if previous is not None:
                merged[previous.key] = merge_certificates(previous, merged[previous.key])
        rows = [_certificate_row(merged[key]) for key in keys]
        await conn.execute(
            *_WRITE_CERTIFICATES.bind(self.schema, **{c: [row[c] for row in rows] for c in _CERTIFICATE_COLUMNS})
        )


def _certificate_row(record: CertificateRecord) -> dict[str, Any]:
    """``record`` as a row of ``birth_certificates``, by column."""
    row = {
        "certificate_no": record.certificate_no,
        "mother_citizen_id": record.mother_citizen_id,
        "father_citizen_id": record.father_citizen_id,
        "child_name": record.child_name,
        "child_sex": record.child_sex,
        "birth_date": record.birth_date,
        "child_citizen_id": record.child_citizen_id,
        "registered_event_id": record.registered_event_id,
        "certified_event_id": record.certified_event_id,
    }
    for side, statement in (("registered", record.registration), ("certified", record.certification)):
        row[f"{side}_at"] = statement.recorded_at if statement else None
        for field in ("father_citizen_id", "child_name", "child_sex", "birth_date"):
            row[f"{side}_{field}"] = getattr(statement, field) if statement else None
    return row


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
