"""The projector's pipeline (``services.projector.pipeline``) on the in-memory store: the fence, parsing, dead
letters, deduplication, the resync of a partition with a gap, and the bisection of a batch that cannot be written
— without Kafka or PostgreSQL. The same pipeline against PostgreSQL and Kafka: test_projector, test_nothing_stalls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

import asyncpg
import pytest

from events import Event, Payload, make_citizen_id, topic_for
from projections.resident import fold_by_citizen, state_from_json
from projections.resident.batch import GENESIS, BatchWrite, chain_hash
from projections.resident.memory import MemoryDatabase, MemoryProjectionStore
from services.projector.pipeline import BatchProjector, DeadLetter, LogRecord, Record
from tests.support.projection import MIGRANT, ev

OTHER = make_citizen_id("510107", date(1985, 3, 4), 17)
SOCIAL = topic_for("social_security")
POLICE = topic_for("public_security")


def contributions(citizen: str, months: int, start: int = 0) -> list[Event[Payload]]:
    """``months`` social-security contributions of ``citizen``, one a month from January 2020 + ``start``."""
    months_from = [divmod(start + n, 12) for n in range(months)]
    return [ev("insurance.contributed", {"period": f"{2020 + y}-{m + 1:02d}"}, citizen=citizen) for y, m in months_from]


def records(events: Sequence[Event[Payload]], *, partition: int = 0, first: int = 0) -> list[Record]:
    """``events`` as the log would hold them: keyed by citizen on their department's topic, from offset ``first``."""
    return [
        LogRecord(topic_for(e.department), partition, first + n, e.citizen_id.encode(), e.canonical_bytes())
        for n, e in enumerate(events)
    ]


def projector(store: MemoryProjectionStore | None = None) -> BatchProjector[MemoryDatabase]:
    return BatchProjector(store or MemoryProjectionStore())


async def test_a_batch_is_folded_chained_checkpointed_and_queued() -> None:
    db = MemoryDatabase()
    events = [*contributions(MIGRANT, 3), *contributions(OTHER, 2)]
    moved = ev("residence_permit.issued", citizen=MIGRANT)
    result = await projector().commit(db, [*records(events), *records([moved])])
    t = db.tables
    assert (result.applied, result.stale, result.duplicates, result.dead_letters) == (6, 0, 0, [])
    assert dict(result.applied_by_department) == {"social_security": 5, "public_security": 1}
    assert t.checkpoints == {(SOCIAL, 0): 5, (POLICE, 0): 1}
    assert t.view_outbox == result.changed_citizens == {MIGRANT, OTHER}
    for (citizen, department), section in t.sections.items():  # the chain links each event to the one before
        mine = (r for r in t.archive.values() if (r.citizen_id, r.department) == (citizen, department))
        chain = sorted(mine, key=lambda r: r.chain_seq)
        prev = GENESIS
        for seq, row in enumerate(chain, start=1):
            assert (row.chain_seq, row.prev_hash, row.hash) == (seq, prev, chain_hash(prev, row.body))
            prev = row.hash
        assert (section.chain_seq, section.chain_head, section.event_count) == (len(chain), prev, len(chain))
    states = fold_by_citizen([*events, moved])
    stored = {(c, d): state_from_json(d, json.loads(s.state)) for (c, d), s in t.sections.items()}
    assert stored == {(c, d): s for c, by in states.items() for d, s in by.items()}


async def test_records_below_the_checkpoint_are_stale() -> None:
    db = MemoryDatabase()
    events = contributions(MIGRANT, 7)
    await projector().commit(db, records(events[:5]))
    again = await projector().commit(db, records(events[2:], first=2))  # a stale owner's batch, overlapping
    assert (again.applied, again.stale, again.duplicates) == (2, 3, 0)
    assert db.tables.checkpoints == {(SOCIAL, 0): 7}
    assert [r.chain_seq for r in db.tables.archive.values()] == list(range(1, 8))


async def test_a_gap_after_the_checkpoint_is_resynced_never_skipped() -> None:
    db = MemoryDatabase()
    mine, others = contributions(MIGRANT, 9), contributions(OTHER, 2)
    await projector().commit(db, records(mine[:5]))
    result = await projector().commit(db, [*records(mine[7:], first=7), *records(others, partition=1)])
    assert result.resync == {(SOCIAL, 0): 5}  # seek partition 0 back to its checkpoint: offsets 5 and 6 are missing
    assert (result.applied, result.stale) == (2, 2)  # partition 1 goes on
    assert db.tables.checkpoints == {(SOCIAL, 0): 5, (SOCIAL, 1): 2}
    resumed = await projector().commit(db, records(mine[5:], first=5))
    assert (resumed.applied, resumed.resync) == (4, {})


async def test_a_partitions_first_batch_may_start_past_offset_zero() -> None:
    """A topic whose first records retention removed before the projector ever read it: nothing to wait for."""
    db = MemoryDatabase()
    result = await projector().commit(db, records(contributions(MIGRANT, 2), first=100))
    assert (result.applied, result.resync) == (2, {})
    assert db.tables.checkpoints == {(SOCIAL, 0): 102}


async def test_an_event_redelivered_at_another_offset_is_applied_once() -> None:
    db = MemoryDatabase()
    [first, second] = contributions(MIGRANT, 2)
    await projector().commit(db, records([first]))
    body = json.loads(second.canonical_bytes())
    reformatted = json.dumps(body, indent=1, sort_keys=False).encode()  # the same event, other bytes
    changed = json.dumps({**body, "payload": {**body["payload"], "period": "1999-01"}}).encode()
    key = MIGRANT.encode()
    batch = [
        records([first], first=1)[0],  # a producer's retry of an event already archived
        LogRecord(SOCIAL, 0, 2, key, second.canonical_bytes()),
        LogRecord(SOCIAL, 0, 3, key, second.canonical_bytes()),  # twice in one batch
        LogRecord(SOCIAL, 0, 4, key, reformatted),
        LogRecord(SOCIAL, 0, 5, key, changed),  # the same event_id, other content
    ]
    result = await projector().commit(db, batch)
    assert (result.applied, result.duplicates) == (1, 3)
    [letter] = result.dead_letters
    assert letter.record.offset == 5 and letter.event_id == str(second.event_id)
    assert letter.reason == f"event_id {second.event_id} was already used for an event with different content"
    assert len(db.tables.archive) == 2 and db.tables.checkpoints == {(SOCIAL, 0): 6}


async def test_what_is_not_an_event_of_its_topic_is_dead_lettered_and_passed() -> None:
    db = MemoryDatabase()
    published: list[DeadLetter] = []

    async def publish(letters: Sequence[DeadLetter]) -> None:
        published.extend(letters)

    [good] = contributions(MIGRANT, 1)
    body = good.canonical_bytes()
    key = MIGRANT.encode()
    batch = [
        LogRecord(SOCIAL, 0, 0, key, None),
        LogRecord(SOCIAL, 0, 1, key, b"{not json"),
        LogRecord(POLICE, 0, 0, key, body),
        LogRecord(SOCIAL, 0, 2, OTHER.encode(), body),
        LogRecord(SOCIAL, 0, 3, b"x" * 2_000_000, body),
        LogRecord(SOCIAL, 0, 4, key.lower(), body),  # an X check character in either case is the same citizen
    ]
    result = await BatchProjector(MemoryProjectionStore(), publish_dead_letters=publish).commit(db, batch)
    reasons = {(d.record.topic, d.record.offset): d.reason for d in result.dead_letters}
    assert reasons[(SOCIAL, 0)] == "record has no value (a tombstone is not an event)"
    assert reasons[(SOCIAL, 1)].startswith("invalid event: ")
    assert reasons[(POLICE, 0)].startswith(
        f"event type insurance.contributed belongs to social_security, not on topic {POLICE}"
    )
    assert reasons[(SOCIAL, 2)].startswith(f"record key '{OTHER}' is not the event's citizen_id '{MIGRANT}'")
    assert reasons[(SOCIAL, 3)] == "record key: 2,000,000 bytes, no citizen ID is that long"
    assert result.applied == 1 and published == result.dead_letters
    assert {k[:2] for k in db.tables.dead_letters} == {(SOCIAL, 0), (POLICE, 0)} and len(db.tables.dead_letters) == 5
    assert db.tables.checkpoints == {(SOCIAL, 0): 5, (POLICE, 0): 1}  # every partition past its rejected records


class _Refuses(MemoryProjectionStore):
    """The memory store, failing a write that holds any of ``refused`` events (as PostgreSQL refuses a value),
    or failing every write holding events as an outage."""

    def __init__(self, refused: set[str], *, outage: bool = False) -> None:
        self.refused = refused
        self.outage = outage

    async def write(self, conn: MemoryDatabase, batch: BatchWrite) -> None:
        await super().write(conn, batch)  # half written when it fails: the transaction must undo it
        if self.outage and batch.archive:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        if any(str(row.event_id) in self.refused for row in batch.archive):
            raise OverflowError("date value out of range")


async def test_an_outage_applies_nothing_and_is_raised() -> None:
    db = MemoryDatabase()
    published: list[DeadLetter] = []

    async def publish(letters: Sequence[DeadLetter]) -> None:
        published.extend(letters)

    batch = [*records(contributions(MIGRANT, 4)), LogRecord(SOCIAL, 0, 4, MIGRANT.encode(), b"{")]
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await BatchProjector(_Refuses(set(), outage=True), publish_dead_letters=publish).commit(db, batch)
    assert (db.tables.archive, db.tables.checkpoints, db.tables.dead_letters, published) == ({}, {}, {}, [])


async def test_what_cannot_be_written_is_found_alone_and_the_rest_applied_in_order() -> None:
    db = MemoryDatabase()
    mine, others = contributions(MIGRANT, 12), contributions(OTHER, 12)
    culprits = {str(mine[3].event_id), str(mine[4].event_id), str(others[11].event_id)}
    batch = [*records(mine), *records(others, partition=1)]
    result = await BatchProjector(_Refuses(culprits)).commit(db, batch)
    assert isinstance(result.failure, OverflowError)
    assert (result.isolated, result.applied) == (3, 21) and result.attempts > 3
    assert {d.event_id for d in result.dead_letters} == culprits
    assert all(d.reason == "could not be applied: OverflowError: date value out of range" for d in result.dead_letters)
    assert db.tables.checkpoints == {(SOCIAL, 0): 12, (SOCIAL, 1): 12}
    archived = sorted(db.tables.archive.values(), key=lambda r: (r.partition, r.chain_seq))
    assert [(r.partition, r.offset) for r in archived] == sorted((r.partition, r.offset) for r in archived)
    assert {str(r.event_id) for r in archived}.isdisjoint(culprits) and len(archived) == 21
    again = await projector().commit(db, batch)  # redelivered: nothing twice
    assert (again.applied, again.stale) == (0, len(batch))
