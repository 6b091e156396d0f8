"""The publisher SDK against a real Kafka and PostgreSQL: the publisher, the transactional outbox, the relay.

The outbox tests play a department: its own table and the outbox in one transaction per change, a relay moving
the outbox to Kafka. The relay is killed in the middle of its work (SIGKILL, as a crash does) and, separately,
made to die exactly between Kafka's acknowledgement and its commit. Afterwards every event is on Kafka, each
citizen's first deliveries are in the department's order, and the projector applies every event exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events import Event, Payload, parse_event
from services.db.dsn import asyncpg_dsn
from services.kafka.auth import KafkaCredentials, demo_department_principal, stored_credentials
from services.publisher import Outbox, OutboxConflict, OutboxRelay, Publisher, PublishError
from services.retry import GaveUpError, RetryPolicy
from services.settings import project_root
from services.simulator import simulate
from tests.support.infra import Endpoints
from tests.support.projector import read_topic
from tests.support.publishing import assert_projected_once, first_deliveries, published_order

pytestmark = pytest.mark.integration

DEPARTMENT = "social_security"


def _events(residents: int, limit: int, seed: int = 5) -> list[Event[Payload]]:
    """Simulated events of one department, in the simulator's (per-citizen chronological) order."""
    wanted = (e for e in simulate(residents, seed=seed) if e["source"]["department"] == DEPARTMENT)
    return [parse_event(e) for e in islice(wanted, limit)]


def _department(infra: Endpoints) -> KafkaCredentials | None:
    """The demo principal of the department these tests publish for (None on an unsecured broker)."""
    return stored_credentials(infra.state_dir, demo_department_principal(DEPARTMENT))


@pytest.fixture
async def department_db(database_url: str) -> AsyncIterator[str]:
    """A database standing in for a department's own: a table of its own and the outbox beside it."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("CREATE SCHEMA dept")
        await conn.execute("CREATE TABLE dept.people (citizen_id text PRIMARY KEY, changes integer NOT NULL)")
        await Outbox("outbox", schema="dept").create(conn)
        await Outbox("outbox", schema="dept").create(conn)  # idempotent
    finally:
        await conn.close()
    yield asyncpg_dsn(database_url)


async def _department_writes(database: str, events: list[Event[Payload]], writers: int = 4, pause: float = 0.0) -> None:
    """Each change in its own transaction: the department's row and the outbox row, both or neither.
    Several writers at once, each citizen always with the same writer (so each citizen's order is defined)."""
    outbox = Outbox("outbox", schema="dept")
    lanes: list[list[Event[Payload]]] = [[] for _ in range(writers)]
    for event in events:
        lanes[zlib.crc32(event.citizen_id.encode()) % writers].append(event)

    async def write(lane: list[Event[Payload]]) -> None:
        conn = await asyncpg.connect(database)
        try:
            for event in lane:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO dept.people VALUES ($1, 1) "
                        "ON CONFLICT (citizen_id) DO UPDATE SET changes = dept.people.changes + 1",
                        event.citizen_id,
                    )
                    await outbox.add(conn, event)
                if pause:
                    await asyncio.sleep(pause)
        finally:
            await conn.close()

    await asyncio.gather(*(write(lane) for lane in lanes))


def _spawn_relay(database: str, infra: Endpoints, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RENKOU_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "RENKOU_TOPIC_NAMESPACE": namespace}
    department = stored_credentials(infra.state_dir, demo_department_principal(DEPARTMENT))
    if department is not None:  # the relay runs as the department's own principal
        env |= {"RENKOU_KAFKA_USERNAME": department.username, "RENKOU_KAFKA_PASSWORD": department.password}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.publisher.relay",
                "--dsn",
                database,
                "--table",
                "dept.outbox",
                "--batch-size",
                "25",
            ],
            env=env,
            cwd=project_root(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _sent(database: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM dept.outbox WHERE sent_at IS NOT NULL"))
    finally:
        await conn.close()


# --- Publisher --------------------------------------------------------------------------------------------------


async def test_the_publisher_returns_where_kafka_stored_each_event(infra: Endpoints, namespace: str) -> None:
    events = _events(20, 300)
    async with Publisher(infra.kafka_bootstrap, namespace=namespace, credentials=_department(infra)) as publisher:
        receipts = await publisher.publish_many(events)
        single = await publisher.publish(events[0])  # publishing again is allowed: consumers dedupe by event_id
    records = await read_topic(infra.kafka_bootstrap, f"{namespace}population.{DEPARTMENT}.v1")
    assert len(records) == len(events) + 1
    stored = {(r.partition, r.offset): r for r in records}
    for event, receipt in zip([*events, events[0]], [*receipts, single], strict=True):
        record = stored[(receipt.partition, receipt.offset)]
        assert receipt.event_id == str(event.event_id) and receipt.topic == publisher.topic(event)
        assert record.key == event.citizen_id.encode()
        assert record.value == event.canonical_bytes()
    assert first_deliveries(records) == published_order(events)


async def test_an_unreachable_kafka_is_a_publish_error_once_the_retry_deadline_passed() -> None:
    publisher = Publisher("127.0.0.1:1", request_timeout_ms=3000, retry=RetryPolicy(deadline_s=4.0, initial_s=0.2))
    started = asyncio.get_running_loop().time()
    with pytest.raises(PublishError, match=r"unavailable .*gave up after \d+ attempts") as caught:
        await publisher.publish(_events(3, 1)[0])
    assert isinstance(caught.value.__cause__, GaveUpError) and caught.value.__cause__.attempts >= 2
    assert asyncio.get_running_loop().time() - started < 4.0 + 3.0 + 1.0  # the deadline, one attempt, a margin
    await publisher.stop()


# --- Outbox -----------------------------------------------------------------------------------------------------


async def test_outbox_add_belongs_inside_the_department_transaction(department_db: str) -> None:
    outbox = Outbox("outbox", schema="dept")
    [event, other] = _events(5, 2)
    conn = await asyncpg.connect(department_db)
    try:
        with pytest.raises(RuntimeError, match="inside the department's own transaction"):
            await outbox.add(conn, event)
        # A rolled-back change leaves no event behind.
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await outbox.add(conn, event)
                _ = 1 / 0
        assert await outbox.pending(conn) == 0
        async with conn.transaction():
            first = await outbox.add(conn, event)
        async with conn.transaction():
            assert await outbox.add(conn, event) == first  # the same event again: no second row
        clash = parse_event({**json.loads(other.canonical_bytes()), "event_id": str(event.event_id)})
        with pytest.raises(OutboxConflict):
            async with conn.transaction():
                await outbox.add(conn, clash)
        assert await outbox.pending(conn) == 1
    finally:
        await conn.close()


def test_outbox_names_are_checked() -> None:
    with pytest.raises(ValueError, match="identifier"):
        Outbox("outbox; DROP TABLE people")
    assert Outbox.named("dept.outbox").name == "dept.outbox"
    assert Outbox.named("outbox").name == "public.outbox"


async def test_the_relay_killed_mid_run_loses_and_reorders_nothing(
    infra: Endpoints, namespace: str, database_url: str, department_db: str, tmp_path: Path
) -> None:
    events = _events(60, 1500)
    log = tmp_path / "relay.log"
    relay = _spawn_relay(department_db, infra, namespace, log)
    kills = 0
    try:
        writing = asyncio.create_task(_department_writes(department_db, events, pause=0.002))
        # Kill the relay twice while the department keeps writing: once early, once later on.
        for threshold in (len(events) // 5, len(events) // 2):
            while await _sent(department_db) < threshold:
                assert relay.poll() is None, log.read_text()
                await asyncio.sleep(0.02)
            os.kill(relay.pid, signal.SIGKILL)
            relay.wait()
            kills += 1
            relay = _spawn_relay(department_db, infra, namespace, log)
        await writing
        deadline = asyncio.get_running_loop().time() + 120
        while await _sent(department_db) < len(events):
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.1)
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert kills == 2

    records = await read_topic(infra.kafka_bootstrap, f"{namespace}population.{DEPARTMENT}.v1")
    assert {json.loads(r.value)["event_id"] for r in records} == {str(e.event_id) for e in events}  # nothing lost
    assert first_deliveries(records) == published_order(events)  # nothing reordered
    for record in records:
        assert record.key == json.loads(record.value)["citizen_id"].encode()
    await assert_projected_once(infra, database_url, namespace, events)


class _CrashAfterAckError(Exception):
    pass


class _DiesAfterKafkaAcked(Publisher):
    """A publisher whose process "dies" right after Kafka acknowledged, before the relay's commit."""

    crashes = 2

    async def send_records(self, records: Any) -> Any:
        results = await super().send_records(records)
        if self.crashes:
            self.crashes -= 1
            raise _CrashAfterAckError
        return results


async def test_a_crash_between_ack_and_commit_duplicates_and_the_duplicates_are_absorbed(
    infra: Endpoints, namespace: str, database_url: str, department_db: str
) -> None:
    events = _events(30, 400)
    await _department_writes(department_db, events)
    publisher = _DiesAfterKafkaAcked(infra.kafka_bootstrap, namespace=namespace, credentials=_department(infra))
    relay = OutboxRelay(Outbox("outbox", schema="dept"), publisher, batch_size=150)
    conn = await asyncpg.connect(department_db)
    try:
        for _ in range(2):
            with pytest.raises(_CrashAfterAckError):
                await relay.relay_once(conn)
            assert await _sent(department_db) == 0  # rolled back: nothing marked sent
        while await relay.relay_once(conn):
            pass
    finally:
        await conn.close()
        await publisher.stop()
    assert await _sent(department_db) == len(events)
    records = await read_topic(infra.kafka_bootstrap, f"{namespace}population.{DEPARTMENT}.v1")
    assert len(records) == len(events) + 2 * 150  # the first 150 rows went out three times
    assert first_deliveries(records) == published_order(events)
    await assert_projected_once(infra, database_url, namespace, events)


async def test_two_relays_on_one_outbox_keep_each_citizens_order(
    infra: Endpoints, namespace: str, department_db: str
) -> None:
    events = _events(40, 800)
    await _department_writes(department_db, events)
    publishers = [
        Publisher(infra.kafka_bootstrap, namespace=namespace, credentials=_department(infra)) for _ in range(2)
    ]
    relays = [OutboxRelay(Outbox("outbox", schema="dept"), p, batch_size=40) for p in publishers]

    async def drain(relay: OutboxRelay) -> None:
        conn = await asyncpg.connect(department_db)
        try:
            while await relay.relay_once(conn):
                pass
        finally:
            await conn.close()

    try:
        await asyncio.gather(*(drain(r) for r in relays))
    finally:
        for p in publishers:
            await p.stop()
    assert sum(r.published for r in relays) == len(events)
    records = await read_topic(infra.kafka_bootstrap, f"{namespace}population.{DEPARTMENT}.v1")
    assert len(records) == len(events)
    assert first_deliveries(records) == published_order(events)
