"""Nothing stalls (CONTRACT §10): a record that cannot be applied goes to the dead letters and its partition moves
on — the next event of another citizen on the same partition is applied within seconds.

The poison pills are the ones that once stopped a projector for good: timestamps beyond Python's years, a
contribution period of the year 0, a record of ~1 MiB written straight to a department topic (too large to be
copied onto the dead-letter topic), and a record that passes validation but fails in PostgreSQL (a data
exception raised by a trigger of the test's own database, standing for whatever content the database refuses).
The projector runs as in production (``running_projector``: the FastStream app, real Kafka, real PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from events.citizen_id import make_citizen_id
from events.examples import example_event
from projections.resident.batch import BatchWrite
from projections.resident.store import PostgresProjectionStore
from services.db.dsn import asyncpg_dsn
from services.dead_letters import OMITTED, REASON, SOURCE_OFFSET, SOURCE_TOPIC, VALUE_SIZE
from services.operations.dlq import get_dead_letter, list_dead_letters
from services.projector.pipeline import BatchProjector, LogRecord
from tests.support.infra import Endpoints, kafka_options
from tests.support.operations import renkou
from tests.support.projector import running_projector, settings_for
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

PARTITION = 1
APPLIED_WITHIN_S = 15.0
POISONED = make_citizen_id("510107", date(1980, 1, 1), 11)
BYSTANDER = make_citizen_id("510107", date(1981, 2, 2), 21)


def _event(event_type: str, citizen_id: str, **changes: Any) -> dict[str, Any]:
    event = example_event(event_type)
    event.update(event_id=str(uuid.uuid4()), citizen_id=citizen_id, **changes)
    return event


def _bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def _changed(**changes: Any) -> Callable[[dict[str, Any]], bytes]:
    return lambda event: _bytes({**event, **changes})


def _period_zero(event: dict[str, Any]) -> bytes:
    return _bytes({**event, "payload": {**event["payload"], "period": "0000-01"}})


def _about_one_mebibyte(event: dict[str, Any]) -> bytes:
    text = _bytes(event)
    return text[:-1] + b" " * (1_048_400 - len(text)) + b"}"  # still a JSON object: whitespace is allowed


POISON_PILLS = {
    "occurred_at beyond the year 9999 in UTC": ("hukou.moved_out", _changed(occurred_at="9999-12-31T23:59:59-14:00")),
    "occurred_at before the year 1 in UTC": ("hukou.moved_out", _changed(occurred_at="0001-01-01T00:00:00+14:00")),
    "occurred_at at the end of the year 9999": ("hukou.moved_out", _changed(occurred_at="9999-12-31T23:59:59+00:00")),
    "a contribution period in the year 0": ("insurance.contributed", _period_zero),
    "a record of ~1 MiB": ("hukou.moved_out", _about_one_mebibyte),
}


async def _send(bootstrap: str, records: list[tuple[str, bytes, bytes]], partition: int = PARTITION) -> list[int]:
    """Send ``(topic, key, value)`` records to one partition, in order; their offsets."""
    producer = AIOKafkaProducer(
        **kafka_options(bootstrap), acks="all", enable_idempotence=True, max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    try:
        sent = [await producer.send_and_wait(t, value=v, key=k, partition=partition) for t, k, v in records]
    finally:
        await producer.stop()
    return [s.offset for s in sent]


async def _wait_for(database_url: str, query: str, *args: Any, wait_s: float = APPLIED_WITHIN_S) -> float:
    """Seconds until ``query`` returns a row (fails after ``wait_s``)."""
    started = time.monotonic()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        while await conn.fetchrow(query, *args) is None:
            if time.monotonic() - started > wait_s:
                raise AssertionError(f"not within {wait_s:.0f}s: {query} {args}")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return time.monotonic() - started


_PAST = "SELECT 1 FROM projection.checkpoints WHERE topic = $1 AND next_offset > $2"  # the partition moved on


async def _dead_letter_topic(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, **kafka_options(bootstrap), auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[Any] = []
        deadline = time.monotonic() + 20
        while len(found) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


@pytest.mark.parametrize("pill", sorted(POISON_PILLS))
async def test_a_poison_pill_is_dead_lettered_and_the_partition_moves_on(
    infra: Endpoints, databases: Databases, pill: str
) -> None:
    event_type, poison = POISON_PILLS[pill]
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    department = example_event(event_type)["source"]["department"]
    topic = f"{ns}population.{department}.v1"
    bad = poison(_event(event_type, POISONED))
    good = _event(event_type, BYSTANDER)
    async with running_projector(settings):
        offsets = await _send(
            infra.kafka_bootstrap, [(topic, POISONED.encode(), bad), (topic, BYSTANDER.encode(), _bytes(good))]
        )
        seconds = await _wait_for(
            db, "SELECT 1 FROM projection.event_archive WHERE event_id = $1::uuid", good["event_id"]
        )
        assert seconds < APPLIED_WITHIN_S
        await _wait_for(
            db, "SELECT 1 FROM projection.checkpoints WHERE topic = $1 AND next_offset > $2", topic, offsets[1]
        )
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        letters, total = await list_dead_letters(conn)
        letter = await get_dead_letter(conn, (topic, PARTITION, offsets[0]))
    finally:
        await conn.close()
    assert total == 1 and letters[0].coordinates == letter.coordinates
    assert "invalid event" in letter.reason
    [on_topic] = await _dead_letter_topic(infra.kafka_bootstrap, f"{ns}population.dead_letter.v1", 1)
    headers = dict(on_topic.headers)
    assert headers[SOURCE_TOPIC] == topic.encode() and int(headers[SOURCE_OFFSET]) == offsets[0]
    assert headers[REASON].decode() == letter.reason
    if len(bad) > 1024 * 1024 // 2:
        # Too large to copy: by reference, on the topic and in the table; the record stays in its topic.
        assert on_topic.value is None and headers[OMITTED] == b"value" and int(headers[VALUE_SIZE]) == len(bad)
        assert letter.value is None and letter.value_size == len(bad)
        assert "record size: 1,048,400 bytes" in letter.reason
        shown = await renkou(settings, "dlq", "show", letter.coordinates, "--json", "--wait", "5")
        assert shown.code == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["value"] is None and detail["value_size"] == len(bad)
        assert "stays at" in detail["value_omitted"] and detail["headers"][OMITTED] == "value"
        listed = await renkou(settings, "dlq", "list")
        assert listed.code == 0 and letter.coordinates in listed.stdout, listed.stdout
        redriven = await renkou(settings, "dlq", "redrive", letter.coordinates)
        assert redriven.code != 0 and "--value-file" in redriven.stderr + redriven.stdout
    else:
        assert on_topic.value == bad and letter.value == bad
        assert "out of the register's range" in letter.reason or "between 1870-01 and 2199-12" in letter.reason


async def test_a_record_the_database_refuses_is_isolated_and_the_rest_of_its_batch_applied(
    infra: Endpoints, databases: Databases
) -> None:
    """Valid for parse_event, refused by PostgreSQL (a data exception): the batch is bisected down to it."""
    ns = await create_namespace(infra)
    db = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        await conn.execute(f"""
            CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'value out of range for %', NEW.citizen_id USING ERRCODE = 'numeric_value_out_of_range';
            END $$;
            CREATE TRIGGER test_refuse BEFORE INSERT ON projection.event_archive FOR EACH ROW
                WHEN (NEW.citizen_id = '{POISONED}') EXECUTE FUNCTION test_refuse();
        """)
    finally:
        await conn.close()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    topic = f"{ns}population.public_security.v1"
    others = [make_citizen_id("510107", date(1982, 3, 3), 2 * n + 1) for n in range(30)]
    before = [_event("hukou.moved_out", cid) for cid in others[:15]]
    after = [_event("hukou.moved_out", cid) for cid in others[15:]]
    poison = _event("hukou.moved_out", POISONED)
    records = [(topic, e["citizen_id"].encode(), _bytes(e)) for e in [*before, poison, *after]]
    async with running_projector(settings):
        offsets = await _send(infra.kafka_bootstrap, records)
        await _wait_for(
            db, "SELECT 1 FROM projection.checkpoints WHERE topic = $1 AND next_offset > $2", topic, offsets[-1]
        )
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        archived = {r["citizen_id"] for r in await conn.fetch("SELECT citizen_id FROM projection.event_archive")}
        [letter] = await conn.fetch("SELECT kafka_offset, reason, event_id FROM projection.dead_letters")
    finally:
        await conn.close()
    assert archived == set(others)
    assert letter["kafka_offset"] == offsets[15] and letter["event_id"] == poison["event_id"]
    assert letter["reason"].startswith("could not be applied: NumericValueOutOfRangeError: value out of range for")


class _DriverRefuses(PostgresProjectionStore):
    """The store, failing as asyncpg does when it cannot encode a value (``OverflowError`` in the COPY), for the
    archive rows of some events — or as an outage, for all of them."""

    def __init__(self, refused: set[str], outage: bool = False) -> None:
        super().__init__()
        self.refused = refused
        self.outage = outage

    async def write(self, conn: asyncpg.Connection, batch: BatchWrite) -> None:
        if self.outage and batch.archive:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        if any(str(row.event_id) in self.refused for row in batch.archive):
            raise OverflowError("date value out of range")
        await super().write(conn, batch)


async def test_isolation_keeps_partition_order_checkpoints_and_exactly_once(databases: Databases) -> None:
    """Several culprits on several partitions: each dead-lettered alone, every other record applied once, in offset
    order (the hash chains prove it), the checkpoints past the batch; an outage applies nothing and is raised."""
    db = await databases.create()
    citizens = [make_citizen_id("630102", date(1990, 1, 1), 2 * n + 1) for n in range(6)]
    topic = "population.social_security.v1"
    records, culprits = [], set()
    for partition in range(3):
        for offset in range(40):
            cid = citizens[partition * 2 + offset % 2]  # a citizen's records are on one partition, as keyed
            event = _event("insurance.contributed", cid)
            event["payload"] = {**event["payload"], "period": f"{2000 + offset // 12}-{offset % 12 + 1:02d}"}
            if (partition, offset) in {(0, 3), (0, 4), (1, 39), (2, 0), (2, 21)}:
                culprits.add(event["event_id"])
            records.append(LogRecord(topic, partition, offset, cid.encode(), _bytes(event)))
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await BatchProjector(_DriverRefuses(culprits, outage=True)).commit(conn, records)
        assert await conn.fetchval("SELECT count(*) FROM projection.event_archive") == 0
        assert await conn.fetchval("SELECT count(*) FROM projection.dead_letters") == 0

        result = await BatchProjector(_DriverRefuses(culprits)).commit(conn, records)
        assert isinstance(result.failure, OverflowError) and result.isolated == len(culprits)
        assert result.applied == len(records) - len(culprits)
        dead = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM projection.dead_letters")}
        assert dead == culprits
        checkpoints = {
            r["kafka_partition"]: r["next_offset"]
            for r in await conn.fetch("SELECT kafka_partition, next_offset FROM projection.checkpoints")
        }
        assert checkpoints == {0: 40, 1: 40, 2: 40}
        rows = await conn.fetch(
            "SELECT citizen_id, chain_seq, kafka_partition, kafka_offset FROM projection.event_archive "
            "ORDER BY citizen_id, chain_seq"
        )
        assert len(rows) == len(records) - len(culprits)
        by_citizen: dict[str, list[tuple[int, int]]] = {}
        for r in rows:
            by_citizen.setdefault(r["citizen_id"], []).append((r["kafka_partition"], r["kafka_offset"]))
        for positions in by_citizen.values():
            assert positions == sorted(positions)  # applied in log order, one chain link after the other

        again = await BatchProjector(PostgresProjectionStore()).commit(conn, records)  # redelivered: nothing twice
        assert (again.applied, again.stale, again.failure) == (0, len(records), None)
        assert await conn.fetchval("SELECT count(*) FROM projection.event_archive") == len(rows)
    finally:
        await conn.close()
