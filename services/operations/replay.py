"""Rebuild the resident-view projection from the Kafka log into a shadow schema, while the live one keeps serving.

The same ``BatchProjector`` as the live projector, pointed at the shadow's tables, is fed by plain consumers that
``assign()`` partitions (no consumer group, nothing committed) and read each from the shadow's own checkpoint up
to a target offset. The shadow's checkpoints commit with each batch, so an interrupted replay resumes where it
stopped. Dead letters found on the way land in the shadow's ``dead_letters`` table only: the live projector
published them to the dead-letter topic when it met them first.

Throughput: parsing and folding events is Python CPU work, so ``workers`` > 1 runs the batches of disjoint sets
of partition *numbers* in separate processes. A citizen is keyed to the same partition number on all four
department topics, so every row keyed by a citizen is written by one worker only; the one table written across
citizens (``birth_certificates``, mother's and child's sides) merges order-independently under row locks, and the
rare lock conflict between workers (a deadlock) rolls that batch back and retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from events import department_topics
from projections.resident.reads import read_checkpoints
from projections.resident.store import PostgresProjectionStore
from services.db import roles as db_roles
from services.kafka.auth import OPERATOR, KafkaCredentials, bootstrap_servers, credentials_for
from services.operations.base import (
    OperationError,
    Partition,
    Positions,
    UnavailableError,
    database,
    department_partitions,
    dsn,
    kafka_consumer,
    log_ends,
    log_starts,
)
from services.operations.schemas import DEFAULT_SHADOW, LIVE, check_name, complete_indexes, ensure_shadow
from services.projector.pipeline import BatchProjector, BatchResult, Record
from services.retry import LOCK_CONFLICTS, lock_conflicts
from services.runtime import tune_gc_for_batches
from services.settings import Settings

DEFAULT_BATCH = 4000
FETCH_BYTES = 4 * 1024 * 1024
STALL_S = 120.0
_RETRYABLE = (*LOCK_CONFLICTS, asyncpg.UniqueViolationError)

Progress = Callable[[int, int], None]
"""Called with (events done, events in all) while a replay runs."""

Work = dict[Partition, tuple[int, int]]
"""(topic, partition) → [start, target): the offsets still to project."""


@dataclass
class ReplayStats:
    """What the projector did with the records a replay fed it."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0

    def add(self, other: ReplayStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class ReplayReport:
    """One replay: from which checkpoints to which targets, how long, with how many workers."""

    shadow: str
    created: bool
    start: Positions
    target: Positions
    stats: ReplayStats
    seconds: float
    workers: int

    @property
    def events(self) -> int:
        """Offsets advanced over all partitions (records read)."""
        return sum(max(0, t - self.start.get(p, 0)) for p, t in self.target.items())

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@asynccontextmanager
async def shadow_lock(conn: asyncpg.Connection, shadow: str) -> AsyncIterator[None]:
    """Hold the session lock that lets one replay, verify or swap work on ``shadow`` at a time."""
    key = f"renkou.shadow.{shadow}"
    if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
        raise OperationError(f"another replay, verify or swap is working on {shadow}; wait for it to finish")
    try:
        yield
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


SWAP_LOCK = "renkou.swap"


@asynccontextmanager
async def swap_guard(conn: asyncpg.Connection, *, shared: bool) -> AsyncIterator[None]:
    """Keep swaps out (``shared``: verify, which must see ``projection`` stay put) or be the one swap."""
    if shared:
        # A swap holds this for well under a second: wait for it rather than fail.
        await conn.execute("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))", SWAP_LOCK)
    elif not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", SWAP_LOCK):
        raise OperationError("a verify or another swap is running; wait for it to finish")
    try:
        yield
    finally:
        unlock = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await conn.execute(f"SELECT {unlock}(hashtextextended($1, 0))", SWAP_LOCK)


def make_projector(shadow: str, namespace: str) -> BatchProjector[asyncpg.Connection]:
    """The live projector's pipeline, writing to ``shadow``, never publishing dead letters again."""
    return BatchProjector(PostgresProjectionStore(shadow), namespace=namespace, publish_dead_letters=None)


def replay_consumer(settings: Settings) -> Any:
    """A started consumer without a group, tuned for reading the log from the beginning (context manager)."""
    return kafka_consumer(settings, max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=8 * FETCH_BYTES)


async def project_range(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    projector: BatchProjector[asyncpg.Connection],
    work: Mapping[Partition, tuple[int, int]],
    *,
    batch_size: int = DEFAULT_BATCH,
    retry: bool = True,
    stall_s: float = STALL_S,
    keep_going: Callable[[], bool] | None = None,
) -> ReplayStats:
    """Feed the records ``[start, target)`` of every partition in ``work`` to ``projector``.

    One ``conn.transaction()`` per batch: a transaction of its own, or a savepoint when the caller holds one open
    (verify and swap project their last stretch inside their own transaction). ``retry`` re-runs a batch that
    lost a lock conflict to another worker; inside a caller's transaction errors propagate instead.
    ``keep_going`` is asked before every batch (a worker process stops when the replay that started it is gone).
    """
    stats = ReplayStats()
    pending = {p: (s, t) for p, (s, t) in work.items() if t > s}
    if not pending:
        return stats
    tps = {p: TopicPartition(*p) for p in pending}
    consumer.assign(list(tps.values()))
    for p, (start, _) in pending.items():
        consumer.seek(tps[p], start)
    last_progress = time.monotonic()
    while pending:
        if keep_going is not None and not keep_going():
            raise OperationError("the replay that started this worker has gone; stopping")
        fetched = await consumer.getmany(*[tps[p] for p in pending], timeout_ms=500, max_records=batch_size)
        records: list[Record] = []
        for tp, recs in fetched.items():
            limits = pending.get((tp.topic, tp.partition))
            if limits is not None:
                records.extend(r for r in recs if r.offset < limits[1])
        if records:
            await _apply(conn, projector, records, stats, retry=retry)
            last_progress = time.monotonic()
        for p in list(pending):
            if await consumer.position(tps[p]) >= pending[p][1]:
                consumer.pause(tps[p])
                del pending[p]
        if pending and time.monotonic() - last_progress > stall_s:
            behind = {f"{t}[{n}]": pending[(t, n)][1] for t, n in sorted(pending)}
            raise OperationError(f"replay stalled: no record for {stall_s:.0f}s while waiting for offsets {behind}")
    return stats


async def _apply(
    conn: asyncpg.Connection,
    projector: BatchProjector[asyncpg.Connection],
    records: Sequence[Record],
    stats: ReplayStats,
    *,
    retry: bool,
) -> None:
    def count(_: BaseException) -> None:
        stats.retries += 1

    # The live projector's own commit: a record that cannot be applied is dead-lettered here as it was live. A lock
    # conflict with another worker is tried again up to five times.
    result: BatchResult = await lock_conflicts(6 if retry else 1, _RETRYABLE, on_retry=count)(
        projector.commit, conn, records
    )
    if result.resync or result.stale:
        # Records are fed from the shadow's own checkpoints; anything else means someone else writes to it.
        raise OperationError(
            f"the schema being rebuilt moved under the replay ({result.stale} records below its checkpoints)"
        )
    stats.records += len(records)
    stats.applied += result.applied
    stats.duplicates += result.duplicates
    stats.dead_letters += len(result.dead_letters)
    stats.batches += 1


@dataclass(frozen=True)
class Job:
    """One worker's share of a replay (plain data: it crosses a process boundary)."""

    dsn: str
    bootstrap: str
    namespace: str
    shadow: str
    work: tuple[tuple[str, int, int, int], ...]  # (topic, partition, start, target)
    batch_size: int
    parent_pid: int | None = None  # set for worker processes: they stop when their parent is gone
    kafka_credentials: KafkaCredentials | None = None


async def run_job(job: Job) -> ReplayStats:
    """Project one worker's partitions into the shadow with a connection and a consumer of its own."""
    # A rebuild may lose its last commits if PostgreSQL crashes: they roll back together with their checkpoints,
    # and the replay resumes before them. Not waiting for the WAL flush per batch is safe here, not live.
    try:
        conn = await asyncpg.connect(
            job.dsn,
            timeout=10,
            server_settings={"application_name": "renkou-replay", "timezone": "UTC", "synchronous_commit": "off"},
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise UnavailableError(f"replay worker cannot reach PostgreSQL ({exc.__class__.__name__})") from exc
    security = job.kafka_credentials.aiokafka_options() if job.kafka_credentials is not None else {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(job.bootstrap),
        **security,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=8 * FETCH_BYTES,
    )
    try:
        try:
            await consumer.start()
        except KafkaError as exc:
            raise UnavailableError(f"replay worker cannot reach Kafka at {job.bootstrap} ({exc})") from exc
        work = {(t, p): (s, e) for t, p, s, e in job.work}
        parent = job.parent_pid
        return await project_range(
            conn,
            consumer,
            make_projector(job.shadow, job.namespace),
            work,
            batch_size=job.batch_size,
            # Orphaned (the parent was killed): stop, or a new replay would find two writers on its shadow.
            keep_going=None if parent is None else lambda: os.getppid() == parent,
        )
    finally:
        await consumer.stop()
        await conn.close()


def run_job_in_child(job: Job) -> dict[str, int]:
    """Entry point of a worker process: errors come back as ``OperationError`` text, which always pickles."""
    tune_gc_for_batches()
    try:
        return asdict(asyncio.run(run_job(job)))
    except OperationError:
        raise
    except Exception as exc:
        raise OperationError(f"replay worker failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        if job.parent_pid is not None and os.getppid() != job.parent_pid:
            # Orphaned (the replay was killed): there is no one to report to, and the pool's machinery would
            # wait for its dead parent forever. The connection is closed, so the open batch rolled back.
            os._exit(3)


def split_work(work: Mapping[Partition, tuple[int, int]], workers: int) -> list[Work]:
    """Share ``work`` among at most ``workers`` groups by partition *number*, balancing the offsets to read.

    All topics' partition ``n`` go to the same group: a citizen is keyed to the same number on every department
    topic, so no two workers ever write the same citizen's rows.
    """
    load: dict[int, int] = {}
    for (_, number), (start, target) in work.items():
        load[number] = load.get(number, 0) + max(0, target - start)
    numbers = sorted((n for n in load if load[n] > 0), key=lambda n: (-load[n], n))
    groups: list[Work] = [{} for _ in range(max(1, min(workers, len(numbers))))]
    weights = [0] * len(groups)
    for number in numbers:
        lightest = weights.index(min(weights))
        weights[lightest] += load[number]
        for p, span in work.items():
            if p[1] == number and span[1] > span[0]:
                groups[lightest][p] = span
    return [g for g in groups if g]


def default_workers() -> int:
    """One worker per core: the work is Python CPU, PostgreSQL and Kafka keep up with it."""
    return max(1, os.cpu_count() or 1)


async def replay_range(
    settings: Settings,
    conn: asyncpg.Connection,
    shadow: str,
    target: Positions,
    *,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    created: bool = False,
) -> ReplayReport:
    """Project ``shadow`` from its checkpoints up to ``target`` (the caller holds ``shadow_lock`` on ``conn``)."""
    topics = department_topics(settings.topic_namespace)
    start = await read_checkpoints(conn, shadow, topics)
    ahead = {p: (start[p], t) for p, t in target.items() if start.get(p, 0) > t}
    if ahead:
        raise OperationError(f"{shadow} is already past the target at {_describe(ahead)}")
    work: Work = {p: (start.get(p, 0), t) for p, t in target.items() if t > start.get(p, 0)}
    stats = ReplayStats()
    began = time.perf_counter()
    groups = split_work(work, workers)
    if progress is not None and not work:
        progress(0, 0)
    if work:
        await _check_log_starts(settings, work)
        jobs = [
            Job(
                dsn(settings, db_roles.OWNER),
                settings.kafka_bootstrap,
                settings.topic_namespace,
                shadow,
                tuple((t, p, s, e) for (t, p), (s, e) in sorted(group.items())),
                batch_size,
                os.getpid() if len(groups) > 1 else None,
                credentials_for(settings, OPERATOR),
            )
            for group in groups
        ]
        poller = asyncio.create_task(_report_progress(conn, shadow, work, progress)) if progress else None
        try:
            if len(jobs) == 1:
                stats.add(await run_job(jobs[0]))
            else:
                for result in await _run_in_processes(jobs):
                    stats.add(ReplayStats(**result))
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
        if progress is not None:
            done = sum(t - s for s, t in work.values())
            progress(done, done)
    return ReplayReport(
        shadow=shadow,
        created=created,
        start=start,
        target=dict(target),
        stats=stats,
        seconds=time.perf_counter() - began,
        workers=len(groups) if work else 0,
    )


async def _run_in_processes(jobs: Sequence[Job]) -> list[dict[str, int]]:
    loop = asyncio.get_running_loop()
    # spawn, not fork: the parent holds an event loop, sockets and threads that a forked child must not share.
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [loop.run_in_executor(pool, run_job_in_child, job) for job in jobs]
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            for f in futures:
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


async def _report_progress(conn: asyncpg.Connection, shadow: str, work: Work, progress: Progress) -> None:
    """Poll the shadow's checkpoints (they advance with every committed batch, whichever process wrote it)."""
    all_events = sum(t - s for s, t in work.values())
    topics = {t for t, _ in work}
    while True:
        now = await read_checkpoints(conn, shadow, topics)
        done = sum(min(now.get(p, 0), t) - s for p, (s, t) in work.items())
        progress(max(0, done), all_events)
        await asyncio.sleep(0.5)


async def _check_log_starts(settings: Settings, work: Work) -> None:
    """A rebuild is complete only if the log still holds every record from the shadow's checkpoints on."""
    async with kafka_consumer(settings) as consumer:
        starts = await log_starts(consumer, [TopicPartition(*p) for p in work])
    gone = {p: (starts[p], s) for p, (s, _) in work.items() if starts.get(p, 0) > s}
    if gone:
        raise OperationError(
            f"the log no longer holds the records a rebuild needs ({_describe(gone)}: log start, needed from); "
            "department topics must keep everything (retention.ms=-1)"
        )


def _describe(positions: Mapping[Partition, tuple[int, int]]) -> str:
    return ", ".join(f"{t}[{p}] {a} vs {b}" for (t, p), (a, b) in sorted(positions.items())[:4]) + (
        f" and {len(positions) - 4} more" if len(positions) > 4 else ""
    )


async def replay(
    settings: Settings,
    shadow: str = DEFAULT_SHADOW,
    *,
    fresh: bool = False,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> ReplayReport:
    """Rebuild ``shadow`` (created when missing, re-created when ``fresh``) up to the log end taken now.

    Resumable: the shadow's checkpoints say where a previous, interrupted replay stopped.
    """
    check_name(shadow)
    async with (
        database(settings, application_name="renkou-replay", role=db_roles.OWNER) as conn,
        shadow_lock(conn, shadow),
    ):
        async with replay_consumer(settings) as consumer:
            ends = await log_ends(consumer, await department_partitions(consumer, settings.topic_namespace))
        created = await ensure_shadow(conn, shadow, fresh=fresh)
        target = {p: end for p, end in ends.items() if end > 0}
        report = await replay_range(
            settings, conn, shadow, target, workers=workers, batch_size=batch_size, progress=progress, created=created
        )
        await complete_indexes(conn, shadow)
        return report


@dataclass
class CatchUp:
    """How a shadow was brought next to the live checkpoints before the last, locked stretch."""

    rounds: list[ReplayReport] = field(default_factory=list)
    waited_s: float = 0.0


async def catch_up(
    settings: Settings,
    conn: asyncpg.Connection,
    shadow: str,
    *,
    close_enough: int = 2000,
    max_rounds: int = 8,
    wait_live_s: float = 60.0,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> CatchUp:
    """Replay ``shadow`` towards the live checkpoints until fewer than ``close_enough`` events remain.

    Targets are the *live checkpoints*, not the log end: verify and swap compare at the position the live
    projection has reached. If the shadow is ahead of the live projection somewhere (a replay went to the log
    end while the live projector lags), wait up to ``wait_live_s`` for the live projection to pass it.
    """
    topics = department_topics(settings.topic_namespace)
    done = CatchUp()
    waiting_since: float | None = None
    while True:
        live = await read_checkpoints(conn, LIVE, topics)
        mine = await read_checkpoints(conn, shadow, topics)
        ahead = {p: (o, live.get(p, 0)) for p, o in mine.items() if o > live.get(p, 0)}
        if ahead:
            now = time.monotonic()
            waiting_since = waiting_since or now
            done.waited_s = now - waiting_since
            if done.waited_s > wait_live_s:
                raise OperationError(
                    f"the live projection is behind {shadow} at {_describe(ahead)} (shadow vs live) after waiting "
                    f"{wait_live_s:.0f}s; is the projector running? (renkou status)"
                )
            await asyncio.sleep(0.5)
            continue
        gap = sum(max(0, t - mine.get(p, 0)) for p, t in live.items())
        if gap <= close_enough or len(done.rounds) >= max_rounds:
            return done
        done.rounds.append(
            await replay_range(settings, conn, shadow, live, workers=workers, batch_size=batch_size, progress=progress)
        )


async def stretch_to(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    shadow: str,
    namespace: str,
    target: Positions,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> ReplayStats:
    """Inside the caller's transaction on ``conn``: project ``shadow`` to exactly ``target``, then prove it.

    Raises when the shadow is past ``target`` anywhere or does not end exactly on it.
    """
    topics = department_topics(namespace)
    mine = await read_checkpoints(conn, shadow, topics)
    ahead = {p: (o, target.get(p, 0)) for p, o in mine.items() if o > target.get(p, 0)}
    if ahead:
        raise OperationError(f"{shadow} is ahead of the live projection at {_describe(ahead)}; retry")
    work = {p: (mine.get(p, 0), t) for p, t in target.items() if t > mine.get(p, 0)}
    stats = await project_range(
        conn, consumer, make_projector(shadow, namespace), work, batch_size=batch_size, retry=False
    )
    after = await read_checkpoints(conn, shadow, topics)
    differ = {
        p: (after.get(p, 0), target.get(p, 0)) for p in set(after) | set(target) if after.get(p, 0) != target.get(p, 0)
    }
    if differ:
        raise OperationError(f"{shadow} did not end on the live checkpoints: {_describe(differ)}")
    return stats
