"""The projection's tables held in memory: a ``ProjectionStore`` with no database, for the projector's own unit
tests (the pipeline's fence, dedupe, dead letters and bisection without Kafka or PostgreSQL).

``MemoryDatabase`` stands where an asyncpg connection stands for ``PostgresProjectionStore``: its
``transaction()`` keeps a copy of the tables on entry and puts it back if the block raises, nested blocks being
savepoints — so the projector's bisection of a failing batch runs here exactly as against PostgreSQL. As in
PostgreSQL, a write that fails inside a transaction aborts it: every later call fails until the block that holds
it ends, and a block that swallowed the failure is rolled back as it ends (a savepoint's end raises). The rules
each table follows are the ones the PostgreSQL statements follow (``batch.ProjectionStore``), checked by the same
contract suite.

One writer, no locks (``lock_checkpoints`` locks nothing), and every block copies every table: for tests, not
for folding a city.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from uuid import UUID

from projections.resident.aliases import NumberLink, standing
from projections.resident.batch import (
    ArchiveRow,
    BatchWrite,
    DeadLetterRow,
    Household,
    ParentLinkRow,
    SectionRow,
)
from projections.resident.family import CertificateRecord, merge_certificates


class DuplicateKeyError(ValueError):
    """A write that would break a key the tables keep unique (like PostgreSQL's ``unique_violation``)."""


class TransactionAbortedError(RuntimeError):
    """A call in a transaction a failed write aborted (like PostgreSQL's ``in_failed_sql_transaction``)."""

    def __init__(self) -> None:
        super().__init__("current transaction is aborted, commands ignored until end of transaction block")


@dataclass
class Tables:
    """The projection's tables, each keyed as in PostgreSQL."""

    archive: dict[tuple[str, str, int], ArchiveRow] = field(default_factory=dict)  # (citizen, department, seq)
    sections: dict[tuple[str, str], SectionRow] = field(default_factory=dict)
    parent_links: dict[tuple[str, str, str], ParentLinkRow] = field(default_factory=dict)
    number_links: dict[str, NumberLink] = field(default_factory=dict)
    certificates: dict[tuple[str, str], CertificateRecord] = field(default_factory=dict)
    households: dict[str, Household] = field(default_factory=dict)
    dead_letters: dict[tuple[str, int, int], DeadLetterRow] = field(default_factory=dict)
    view_outbox: set[str] = field(default_factory=set)
    checkpoints: dict[tuple[str, int], int] = field(default_factory=dict)
    archived_ids: dict[UUID, bytes] = field(default_factory=dict)  # the archive's unique event_id, and its body

    def copy(self) -> Tables:
        """A copy whose containers are new (the rows are immutable and shared)."""
        return replace(self, **{f.name: type(getattr(self, f.name))(getattr(self, f.name)) for f in fields(self)})


class MemoryDatabase:
    """The tables, and transactions over them."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.depth = 0  # transaction blocks open
        self.aborted = False  # a write failed in the innermost block: nothing more until it ends

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A block whose writes are undone if it raises (a savepoint when nested)."""
        self.check()
        saved = self.tables.copy()
        self.depth += 1
        try:
            yield
        except BaseException:
            self.tables, self.aborted = saved, False
            raise
        finally:
            self.depth -= 1
        if self.aborted:  # the block caught its own failure: what it did is undone, as PostgreSQL does
            self.tables = saved
            if self.depth:  # a savepoint is not released in an aborted transaction: the error goes to the outer block
                raise TransactionAbortedError
            self.aborted = False  # a transaction's COMMIT rolls an aborted one back, without an error

    def check(self) -> None:
        """Raise if a failed write aborted the open transaction."""
        if self.aborted:
            raise TransactionAbortedError

    def failed(self) -> None:
        """A write failed: inside a transaction, it is aborted."""
        self.aborted = self.depth > 0


class MemoryProjectionStore:
    """``batch.ProjectionStore`` over a ``MemoryDatabase``."""

    async def lock_checkpoints(
        self, conn: MemoryDatabase, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        conn.check()
        checkpoints = conn.tables.checkpoints
        for partition in partitions:
            checkpoints.setdefault(partition, 0)
        return {p: checkpoints[p] for p in partitions}

    async def archived_bodies(self, conn: MemoryDatabase, event_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        conn.check()
        archived = conn.tables.archived_ids
        return {i: archived[i] for i in event_ids if i in archived}

    async def load_sections(
        self, conn: MemoryDatabase, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], SectionRow]:
        conn.check()
        sections = conn.tables.sections
        return {k: sections[k] for k in keys if k in sections}

    async def write(self, conn: MemoryDatabase, batch: BatchWrite) -> None:
        conn.check()
        try:
            self._write(conn.tables, batch)
        except Exception:
            conn.failed()
            raise

    def _write(self, t: Tables, batch: BatchWrite) -> None:
        for row in batch.archive:
            key = (row.citizen_id, row.department, row.chain_seq)
            if row.event_id in t.archived_ids:
                raise DuplicateKeyError(f"duplicate key: event_id {row.event_id} is archived already")
            if key in t.archive:
                raise DuplicateKeyError(f"duplicate key: chain link {key} is archived already")
            t.archive[key] = row
            t.archived_ids[row.event_id] = row.body
        for section in batch.sections:
            t.sections[(section.citizen_id, section.department)] = section
        for link in batch.parent_links:
            t.parent_links[(link.child_citizen_id, link.role, link.department)] = link
        for number in batch.number_links:
            t.number_links[number.old] = standing(t.number_links.get(number.old), number)
        for record in batch.certificates:
            known = t.certificates.get(record.key)
            t.certificates[record.key] = record if known is None else merge_certificates(known, record)
        for citizen, household in batch.households.items():
            if household is None:
                t.households.pop(citizen, None)
            else:
                t.households[citizen] = household
        for letter in batch.dead_letters:
            t.dead_letters.setdefault((letter.topic, letter.partition, letter.offset), letter)
        t.view_outbox |= batch.changed_citizens
        for partition, next_offset in batch.checkpoints.items():
            if partition in t.checkpoints:  # like PostgreSQL's UPDATE: only a checkpoint locked before moves
                t.checkpoints[partition] = next_offset
