"""One contract, two stores: ``PostgresProjectionStore`` (real PostgreSQL) and ``MemoryProjectionStore`` take the
same batches and must hold the same rows — the rules of ``batch.ProjectionStore`` (checkpoints, an append-only
archive, replace-by-key, the standing number link, merged certificates, the first dead letter, the view outbox, a
failed write undone) checked on both, and their tables compared row for row."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import pytest

from events import Event, Payload, topic_for
from events.examples import CITIZENS
from projections.resident.batch import Accepted, BatchWrite, DeadLetterRow, ProjectionStore, fold_batch, section_keys
from projections.resident.memory import MemoryDatabase, MemoryProjectionStore, Tables
from projections.resident.store import PostgresProjectionStore
from services.db.dsn import asyncpg_dsn
from tests.support.projection import ev
from tests.support.projection_store import comparable, postgres_tables
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

MIGRANT, MOTHER, FATHER, CHILD = (CITIZENS[k] for k in ("migrant", "mother", "father", "child"))
OLD, NEW = CITIZENS["renumbered_before"], CITIZENS["renumbered"]
POLICE, SOCIAL, HEALTH = (topic_for(d) for d in ("public_security", "social_security", "health"))


@dataclass
class Adapter:
    name: str
    store: ProjectionStore[Any]
    conn: Any
    tables: Callable[[], Awaitable[Tables]]


@pytest.fixture
async def adapters(databases: Databases) -> AsyncIterator[list[Adapter]]:
    conn = await asyncpg.connect(asyncpg_dsn(await databases.create()))
    memory = MemoryDatabase()

    async def memory_tables() -> Tables:
        return memory.tables

    try:
        yield [
            Adapter("memory", MemoryProjectionStore(), memory, memory_tables),
            Adapter("postgres", PostgresProjectionStore(), conn, lambda: postgres_tables(conn)),
        ]
    finally:
        await conn.close()


def renumbered(on: date) -> Event[Payload]:
    return ev("identity.number_changed", {"previous_citizen_id": OLD, "changed_on": on.isoformat()}, citizen=NEW)


LATER, EARLIER = renumbered(date(2024, 1, 1)), renumbered(date(2023, 1, 1))
FIRST = [
    ev("hukou.registered", citizen=MIGRANT),
    ev("birth.registered", citizen=CHILD),
    LATER,
    ev("insurance.contributed", citizen=MIGRANT),
]
SECOND = [
    ev("birth.certified", citizen=MOTHER),
    ev("insurance.contributed", {"period": "2024-02"}, citizen=MIGRANT),
    EARLIER,
    ev("hukou.cancelled", citizen=MIGRANT),
]


def letter(reason: str) -> DeadLetterRow:
    return DeadLetterRow(SOCIAL, 0, 7, reason, b"key", b"{", None)


async def write(
    adapter: Adapter,
    events: Sequence[Event[Payload]],
    first: int,
    *,
    letters: Sequence[DeadLetterRow] = (),
    checkpoints: dict[tuple[str, int], int] | None = None,
) -> BatchWrite:
    """``events`` from offset ``first`` of partition 0, written as the projector writes a batch."""
    store, conn = adapter.store, adapter.conn
    batch = [
        Accepted(e, e.canonical_bytes(), topic_for(e.department), 0, first + n, None) for n, e in enumerate(events)
    ]
    async with conn.transaction():
        await store.lock_checkpoints(conn, sorted({(a.topic, 0) for a in batch}))
        written = fold_batch(batch, await store.load_sections(conn, section_keys(batch)))
        written.dead_letters = list(letters)
        written.checkpoints = checkpoints or {(a.topic, 0): a.offset + 1 for a in batch}
        await store.write(conn, written)
    return written


async def test_both_stores_hold_the_same_rows_after_the_same_batches(adapters: list[Adapter]) -> None:
    held = []
    for adapter in adapters:
        await write(adapter, FIRST, 0, letters=[letter("first")])
        assert (await adapter.tables()).households.keys() == {MIGRANT, CHILD}, adapter.name
        await write(
            adapter,
            SECOND,
            4,
            letters=[letter("second")],
            checkpoints={(POLICE, 0): 8, (SOCIAL, 0): 8, (HEALTH, 0): 8, ("never.locked", 0): 3},
        )
        t = await adapter.tables()
        assert t.households.keys() == {CHILD}, adapter.name  # a cancelled hukou leaves its household
        assert t.number_links[OLD].event_id == str(LATER.event_id), adapter.name  # the later stands
        [certificate] = t.certificates.values()
        assert certificate.registration and certificate.certification, adapter.name  # merged across batches
        assert t.dead_letters[(SOCIAL, 0, 7)].reason == "first", adapter.name
        assert t.checkpoints == {(POLICE, 0): 8, (SOCIAL, 0): 8, (HEALTH, 0): 8}, adapter.name
        assert t.view_outbox == {MIGRANT, CHILD, MOTHER, NEW, OLD}, adapter.name
        assert len(t.archive) == len(FIRST) + len(SECOND), adapter.name
        held.append(comparable(t))
    memory, postgres = held
    assert postgres == memory


async def test_what_is_written_is_read_back(adapters: list[Adapter]) -> None:
    for adapter in adapters:
        store, conn = adapter.store, adapter.conn
        written = await write(adapter, FIRST, 0)
        async with conn.transaction():
            assert await store.lock_checkpoints(conn, [(POLICE, 0), (POLICE, 1)]) == {(POLICE, 0): 3, (POLICE, 1): 0}
            ids = [e.event_id for e in FIRST] + [SECOND[0].event_id]
            assert await store.archived_bodies(conn, ids) == {e.event_id: e.canonical_bytes() for e in FIRST}
            keys = [(s.citizen_id, s.department) for s in written.sections] + [(MOTHER, "health")]
            loaded = await store.load_sections(conn, keys)
        assert comparable(Tables(sections=loaded)) == comparable(
            Tables(sections={(s.citizen_id, s.department): s for s in written.sections})
        ), adapter.name


async def test_an_event_is_archived_once_and_a_failed_write_leaves_nothing(adapters: list[Adapter]) -> None:
    for adapter in adapters:
        store, conn = adapter.store, adapter.conn
        await write(adapter, FIRST, 0)
        before = comparable(await adapter.tables())
        with pytest.raises(Exception) as failure:  # each store has its own unique-key error
            async with conn.transaction():
                batch = [
                    Accepted(e, e.canonical_bytes(), SOCIAL, 1, n, None) for n, e in enumerate([*SECOND, FIRST[3]])
                ]
                again = fold_batch(batch, await store.load_sections(conn, section_keys(batch)))
                again.checkpoints = {(SOCIAL, 0): 99}
                await store.write(conn, again)
        assert "duplicate key" in str(failure.value) and "event_id" in str(failure.value), adapter.name
        assert comparable(await adapter.tables()) == before, adapter.name


async def test_a_failed_write_aborts_its_transaction(adapters: list[Adapter]) -> None:
    """As PostgreSQL does: after a write failed, the transaction answers nothing more, even when the failure was
    caught inside it (only a savepoint around the write keeps the transaction going)."""
    for adapter in adapters:
        store, conn = adapter.store, adapter.conn
        await write(adapter, FIRST, 0)
        before = comparable(await adapter.tables())
        again = fold_batch([Accepted(FIRST[0], FIRST[0].canonical_bytes(), POLICE, 1, 0, None)], {})
        async with conn.transaction():
            with contextlib.suppress(Exception):
                await store.write(conn, again)  # event_id archived already
            with pytest.raises(Exception) as failure:
                await store.load_sections(conn, [(MIGRANT, "social_security")])
            assert "current transaction is aborted" in str(failure.value), adapter.name
        assert comparable(await adapter.tables()) == before, adapter.name  # its end rolled it back
        async with conn.transaction():  # a savepoint around the failing write: the transaction goes on
            with contextlib.suppress(Exception):
                async with conn.transaction():
                    await store.write(conn, again)
            assert await store.load_sections(conn, [(MIGRANT, "social_security")]), adapter.name
