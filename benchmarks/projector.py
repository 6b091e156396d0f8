"""Projector throughput and memory beside the raw limits of this machine, measured in one run.

1. N simulated events are published to fresh department topics (acks=all).
2. raw consume: aiokafka reads every record once, no processing.
3. raw COPY: PostgreSQL ``COPY`` of the same archive rows (parsed, hashed beforehand; only the COPY is timed),
   twice: into a bare temporary table (no index, no WAL: the fastest PostgreSQL takes these rows in at all), and
   into a table shaped like the archive (its primary key and ``event_id`` unique index, WAL-logged, a commit per
   50,000 rows: what storing the archive durably costs before any projection work).
4. the projector, as its own process, from offset 0 until every checkpoint reached the log end: events
   committed per second, and the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import CpuClock
from events import parse_event
from projections.resident.store import ARCHIVE_COLUMNS
from services.db.dsn import asyncpg_dsn
from services.settings import Settings
from services.simulator import simulate_bytes
from tests.support.infra import kafka_options
from tests.support.projector import spawn_projector

EVENTS_PER_RESIDENT = 45  # a first guess, corrected from the generator's own count


def generate(events: int, seed: int = 1) -> list[tuple[str, bytes, bytes]]:
    residents = max(1, events // EVENTS_PER_RESIDENT)
    out = list(islice(simulate_bytes(residents * 2, seed=seed), events))
    return out


async def publish_all(bootstrap: str, namespace: str, records: Iterable[tuple[str, bytes, bytes]]) -> float:
    """Publish every record (acks=all, idempotent) to the namespace's department topics; records per second."""
    started = time.perf_counter()
    sent = await publish(bootstrap, namespace, records)
    return sent / (time.perf_counter() - started)


async def publish(bootstrap: str, namespace: str, records: Iterable[tuple[str, bytes, bytes]]) -> int:
    """Publish ``(department, key, value)`` records as they come (a generator is never held whole); how many."""
    producer = AIOKafkaProducer(
        **kafka_options(bootstrap),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        compression_type=None,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for dept, key, value in records:
            pending.append(await producer.send(f"{namespace}population.{dept}.v1", value=value, key=key))
            sent += 1
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def raw_consume(bootstrap: str, namespace: str, total: int) -> float:
    topics = [f"{namespace}population.{d}.v1" for d in ("public_security", "education", "social_security", "health")]
    consumer = AIOKafkaConsumer(
        *topics,
        **kafka_options(bootstrap),
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


@dataclass(frozen=True)
class CopyRates:
    """Rows per second PostgreSQL ``COPY`` takes the archive rows in."""

    bare: float  # temporary table, no index, no WAL
    archive_shaped: float  # the archive's columns, constraints and indexes, WAL-logged


async def raw_copy(database_url: str, records: list[tuple[str, bytes, bytes]]) -> CopyRates:
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
                None,  # logged_at: no Kafka record here
            )
        )
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("CREATE TEMP TABLE copy_bench (LIKE projection.event_archive INCLUDING DEFAULTS)")
        bare = await _timed_copy(conn, rows, "copy_bench", None)
        await conn.execute("DROP TABLE copy_bench")
        # The archive's constraints and indexes (not its triggers, which refuse UPDATE and DELETE only).
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS bench_copy; "
            "CREATE TABLE bench_copy.event_archive (LIKE projection.event_archive INCLUDING ALL)"
        )
        try:
            shaped = await _timed_copy(conn, rows, "event_archive", "bench_copy")
        finally:
            await conn.execute("DROP SCHEMA bench_copy CASCADE")
        return CopyRates(bare=bare, archive_shaped=shaped)
    finally:
        await conn.close()


async def _timed_copy(
    conn: asyncpg.Connection, rows: Sequence[tuple[object, ...]], table: str, schema: str | None
) -> float:
    started = time.perf_counter()
    for i in range(0, len(rows), 50000):
        chunk = rows[i : i + 50000]
        await conn.copy_records_to_table(table, records=chunk, columns=ARCHIVE_COLUMNS, schema_name=schema)
    return len(rows) / (time.perf_counter() - started)


def _vm_hwm_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone meanwhile
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _checkpoint_total(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection.checkpoints"))


@dataclass
class ProjectorRun:
    rate: float  # events committed per second, first committed batch to last
    seconds: float
    processes: int  # the service's processes: the supervisor and its workers, or the one process
    peak_rss_mb: float  # the largest peak RSS (VmHWM) of any one of them
    total_rss_mb: float  # the sum of their peak RSS
    busy_cpu_s_per_event: float = 0.0  # the whole machine's busy CPU over the run, per event committed


async def run_projector(settings: Settings, total: int, port: int, workers: int) -> ProjectorRun:
    """Run the projector service (``python -m services.projector``) with ``workers`` worker processes until all
    ``total`` events are committed."""
    log = tempfile.NamedTemporaryFile(prefix="bench-projector-", suffix=".log", delete=False)  # noqa: SIM115
    log.close()
    # One connection for all the polling: a new one every 0.1 s would cost the measured machine ~8 % of its CPU
    # (a backend forked and a SCRAM authentication each time, ~16 ms of CPU on this machine).
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()))
    proc = spawn_projector(settings, port, log.name, workers=workers)
    peaks: dict[int, int] = {}
    started = None
    first = 0
    initial = await _checkpoint_total(conn)  # an archive already projected: timed from its first new batch
    clock: CpuClock | None = None
    try:
        while True:
            done = await _checkpoint_total(conn)
            if started is None and done > initial:
                started, first, clock = time.perf_counter(), done, CpuClock()
            for pid in _process_tree(proc.pid):
                peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kb(pid))
            if done >= total:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the projector exited; see {log.name}")
            await asyncio.sleep(0.1)
        assert started is not None and clock is not None
        elapsed = time.perf_counter() - started
        return ProjectorRun(
            (done - first) / elapsed,
            elapsed,
            len(peaks),
            max(peaks.values()) / 1024,
            sum(peaks.values()) / 1024,
            clock.busy_seconds() / max(1, done - first),
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        await conn.close()


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's supervisor, its resource tracker and workers)."""
    found = [pid]
    for parent in found:
        try:
            for task in Path(f"/proc/{parent}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
