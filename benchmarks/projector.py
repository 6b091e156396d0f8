"""Projector throughput and memory beside the raw limits of this machine, measured in one run.

1. N simulated events are published to fresh department topics (acks=all).
2. raw consume: aiokafka reads every record once, no processing.
3. raw COPY: PostgreSQL ``COPY`` of the same archive rows (parsed, hashed beforehand; only the COPY is timed).
4. the projector, as its own process, from offset 0 until every checkpoint reached the log end: events
   committed per second, and the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from events import parse_event
from services.settings import Settings, project_root
from services.simulator import simulate_bytes

EVENTS_PER_RESIDENT = 45  # a first guess, corrected from the generator's own count


@dataclass
class ProjectorFigures:
    events: int
    publish_rate: float
    raw_consume_rate: float
    raw_copy_rate: float
    projector_rate: float
    projector_seconds: float
    peak_rss_mb: float

    @property
    def slower_raw(self) -> float:
        return min(self.raw_consume_rate, self.raw_copy_rate)

    @property
    def ratio(self) -> float:
        return self.projector_rate / self.slower_raw


def generate(events: int, seed: int = 1) -> list[tuple[str, bytes, bytes]]:
    residents = max(1, events // EVENTS_PER_RESIDENT)
    out = list(islice(simulate_bytes(residents * 2, seed=seed), events))
    return out


async def publish_all(bootstrap: str, namespace: str, records: list[tuple[str, bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        compression_type=None,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for dept, key, value in records:
            pending.append(await producer.send(f"{namespace}population.{dept}.v1", value=value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(records) / (time.perf_counter() - started)


async def raw_consume(bootstrap: str, namespace: str, total: int) -> float:
    topics = [f"{namespace}population.{d}.v1" for d in ("public_security", "education", "social_security", "health")]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    try:
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(v) for v in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def raw_copy(database_url: str, records: list[tuple[str, bytes, bytes]]) -> float:
    rows = []
    links: dict[tuple[str, str], tuple[int, bytes]] = {}
    for offset, (dept, _key, value) in enumerate(records):
        event = parse_event(value)
        body = event.canonical_bytes()
        seq, prev = links.get((event.citizen_id, dept), (0, bytes(32)))
        link = hashlib.sha256(prev + body).digest()
        links[(event.citizen_id, dept)] = (seq + 1, link)
        rows.append(
            (
                event.citizen_id,
                dept,
                seq + 1,
                event.event_id,
                event.event_type,
                event.schema_version,
                event.occurred_at,
                event.recorded_at,
                "bench",
                0,
                offset,
                body,
                prev,
                link,
            )
        )
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("CREATE TEMP TABLE copy_bench (LIKE projection.event_archive INCLUDING DEFAULTS)")
        started = time.perf_counter()
        for i in range(0, len(rows), 50000):
            await conn.copy_records_to_table(
                "copy_bench",
                records=rows[i : i + 50000],
                columns=[
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
                ],
            )
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _checkpoint_total(database_url: str) -> int:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection.checkpoints"))
    finally:
        await conn.close()


async def run_projector(settings: Settings, total: int, ports: list[int]) -> tuple[float, float, float]:
    """Run ``len(ports)`` projector processes in one consumer group until all ``total`` events are committed.

    Returns events/s from the first committed batch to the last, those seconds, and the largest peak RSS (MB)
    of any one process.
    """
    logs = []
    procs = []
    for port in ports:
        env = {
            **os.environ,
            "RENKOU_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RENKOU_DATABASE_URL": settings.database_url.get_secret_value(),
            "RENKOU_TOPIC_NAMESPACE": settings.topic_namespace,
            "RENKOU_PROJECTOR_METRICS_PORT": str(port),
        }
        log = tempfile.NamedTemporaryFile(prefix="bench-projector-", suffix=".log", delete=False)  # noqa: SIM115
        logs.append(log.name)
        procs.append(
            subprocess.Popen(  # noqa: ASYNC220 - starting the child is instant; it is polled, never awaited
                [sys.executable, "-m", "services.projector"],
                env=env,
                cwd=project_root(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    peak = 0
    started = None
    first = 0
    try:
        while True:
            done = await _checkpoint_total(settings.database_url.get_secret_value())
            if started is None and done > 0:
                started, first = time.perf_counter(), done
            peak = max(peak, *(_vm_hwm_kb(p.pid) for p in procs))
            if done >= total:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a projector exited; see {logs}")
            await asyncio.sleep(0.1)
        assert started is not None
        elapsed = time.perf_counter() - started
        return (done - first) / elapsed, elapsed, peak / 1024
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
