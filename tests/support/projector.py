"""Driving the projector in tests: publish records, run projectors in-process or as processes, wait, compare."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from events import department_topics
from services.db.dsn import asyncpg_dsn
from services.kafka.metadata import partitions_of
from services.projector.app import create_app
from services.residents.views import load_views
from services.settings import Settings, project_root
from tests.support.infra import TEST_ANCHOR_KEY, current, kafka_options

AS_OF = date(2026, 6, 30)


def settings_for(bootstrap: str, database_url: str, namespace: str) -> Settings:
    """A service's settings in a test: the session's stack, whose state folder holds every principal's secret."""
    return Settings(
        kafka_bootstrap=bootstrap,
        database_url=SecretStr(database_url),
        topic_namespace=namespace,
        state_dir=current().state_dir,
        audit_anchor_key_file=TEST_ANCHOR_KEY,
    )


async def publish(
    bootstrap: str,
    records: Iterable[tuple[str, bytes | None, bytes | None]],
    headers: Sequence[tuple[str, bytes]] = (),
) -> int:
    """Send ``(topic, key, value)`` records in order, acks=all; return how many."""
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k, headers=list(headers)) for t, k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap))
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in consumer.partitions_for_topic(t) or await _partitions(consumer, t)
        ]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): off for tp, off in ends.items()}


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    return {tp.partition for tp in await partitions_of(consumer, topic)}


async def wait_caught_up(settings: Settings, wait_s: float = 120.0) -> None:
    """Until every department partition's checkpoint has reached the log end (or fail after ``timeout``)."""
    topics = department_topics(settings.topic_namespace)
    ends = await end_offsets(settings.kafka_bootstrap, topics)
    deadline = time.monotonic() + wait_s
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()))
    try:
        while True:
            rows = await conn.fetch("SELECT topic, kafka_partition, next_offset FROM projection.checkpoints")
            done = {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}
            behind = {tp: end for tp, end in ends.items() if end > 0 and done.get(tp, 0) < end}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"projector did not catch up in {wait_s:.0f}s; behind: {behind}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


@asynccontextmanager
async def running_projector(settings: Settings, **kwargs: Any) -> AsyncIterator[Any]:
    """The projector application started in this process (stopped on exit)."""
    app = create_app(settings, **kwargs)
    async with app:
        yield app


def spawn_projector(settings: Settings, port: int, log_path: str, *, workers: int = 1) -> subprocess.Popen[bytes]:
    """The projector as a separate OS process, as an operator runs it (for crash and rebalance tests).

    With ``workers`` > 1 the process is a supervisor of that many worker processes (``services.workers``).
    """
    env = {
        **os.environ,
        "RENKOU_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "RENKOU_DATABASE_URL": settings.database_url.get_secret_value(),
        "RENKOU_TOPIC_NAMESPACE": settings.topic_namespace,
        "RENKOU_STATE_DIR": str(settings.state_dir),
        "RENKOU_PROJECTOR_METRICS_PORT": str(port),
        "RENKOU_PROJECTOR_WORKERS": str(workers),
        "RENKOU_AUDIT_ANCHOR_KEY_FILE": str(settings.audit_anchor_key_file or TEST_ANCHOR_KEY),
    }
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
    return subprocess.Popen(
        [sys.executable, "-m", "services.projector"],
        env=env,
        cwd=project_root(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def snapshot(database_url: str, namespace: str = "") -> dict[str, Any]:
    """Everything the projection stored that must be identical between two runs over the same log."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        ids = [
            r["citizen_id"] for r in await conn.fetch("SELECT DISTINCT citizen_id FROM projection.sections ORDER BY 1")
        ]
        views = await load_views(conn, ids, AS_OF)
        archive = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT citizen_id, department, chain_seq, event_id, substr(topic, $1::int + 1), kafka_partition, "
                "kafka_offset, body, prev_hash, hash FROM projection.event_archive "
                "ORDER BY citizen_id, department, chain_seq",
                len(namespace),
            )
        ]
        tables = {
            t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM projection.{t} ORDER BY 1, 2")]
            for t in ("household_members", "parent_links", "birth_certificates")
        }
    finally:
        await conn.close()
    return {"views": views, "archive": archive, **tables}


@asynccontextmanager
async def running_view_relay(settings: Settings) -> AsyncIterator[Any]:
    """The view relay started in this process (its lifespan runs; stopped on exit)."""
    from services.view_relay.app import create_app as create_relay

    app = create_relay(settings)
    async with app.router.lifespan_context(app):
        yield app


async def assert_archived_once(database_url: str, event_ids: Sequence[str]) -> None:
    """Every one of ``event_ids`` is in the archive, and exactly once."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT event_id::text AS id, count(*) AS n FROM projection.event_archive "
            "WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
            list(event_ids),
        )
    finally:
        await conn.close()
    counts = {r["id"]: r["n"] for r in rows}
    missing = set(event_ids) - set(counts)
    assert not missing, f"{len(missing)} of {len(event_ids)} events not archived"
    assert set(counts.values()) == {1}, {i: n for i, n in counts.items() if n != 1}


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end, by partition and offset."""
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, recs in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                records.extend(recs)
                if recs and recs[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
