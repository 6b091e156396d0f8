"""What an audit anchor costs (``python -m benchmarks.anchor [--citizens N]``; not part of ``make bench``).

The anchor builder reads every chain head (``projection.sections``, ``access_log_heads``) and joins them with
the anchored heads; it never reads the archive except one row per moved chain. This measures it on a database
with ``N`` synthetic citizens, each with the sections of a real simulated city (real ``state`` rows, so the
scan of ``sections`` reads what production's does), ~3 archive chains and one access-log chain each:

* the first anchor (every chain new), then one with nothing moved (the cheap "unchanged" check), then anchors
  after 1 % and 10 % of the chains moved;
* ``renkou audit verify``'s anchor check over the same data.

Each figure is the wall time of ``AnchorService.anchor_once`` (build + sign + store + publish to Kafka), the
builder's own share (its transaction), and this process's CPU time (what the projector's event loop spends).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from benchmarks.common import bench_namespace, bench_settings, delete_namespace_topics, drop_database, fresh_database
from events import DEPARTMENTS, topic_for
from projections.resident.batch import GENESIS, ArchiveRow
from projections.resident.store import ARCHIVE_COLUMNS, PostgresProjectionStore
from services.anchor.keys import trusted_public_key
from services.anchor.service import AnchorService
from services.db.dsn import asyncpg_dsn
from services.operations.anchor_check import check_against_anchor
from services.operations.base import kafka_consumer
from services.projector.pipeline import BatchProjector, LogRecord
from services.simulator import simulate_bytes
from tests.support.infra import TEST_ANCHOR_KEY, Endpoints, provide


async def real_states(database: str) -> dict[str, list[str]]:
    """Section states of a small simulated city, projected by the real pipeline (no Kafka)."""
    records = [LogRecord(f"population.{d}.v1", 0, i, k, v) for i, (d, k, v) in enumerate(simulate_bytes(300, seed=5))]
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        projector = BatchProjector(PostgresProjectionStore())
        for start in range(0, len(records), 2000):
            async with conn.transaction():
                await projector.process(conn, records[start : start + 2000])
        rows = await conn.fetch("SELECT department, state::text AS state FROM projection.sections")
        await conn.execute("TRUNCATE projection.sections, projection.checkpoints")
        await conn.execute("ALTER TABLE projection.event_archive DISABLE TRIGGER event_archive_no_truncate")
        await conn.execute("TRUNCATE projection.event_archive")
        await conn.execute("ALTER TABLE projection.event_archive ENABLE TRIGGER event_archive_no_truncate")
    finally:
        await conn.close()
    states: dict[str, list[str]] = {d: [] for d in DEPARTMENTS}
    for r in rows:
        states[r["department"]].append(r["state"])
    return states


def _head(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


async def fill(database: str, citizens: int, states: dict[str, list[str]], namespace: str) -> tuple[int, int]:
    """``citizens`` synthetic residents: sections with real states, one archive row at each head, access logs."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    sections, archive, heads, log = [], [], [], []
    for i in range(citizens):
        cid = f"{i:018d}"
        for dept in (DEPARTMENTS[0], *rng.sample(DEPARTMENTS[1:], 2)):
            seq = rng.randint(1, 20)
            head = _head(cid, dept, seq)
            sections.append((cid, dept, rng.choice(states[dept]), seq, now, seq, head))
            archive.append(
                ArchiveRow(
                    *(cid, dept, seq, uuid.uuid4(), "x", 1, now, now, topic_for(dept, namespace), 0, i),
                    *(b"{}", GENESIS, head),
                )
            )
        seq = rng.randint(1, 30)
        head = _head(cid, seq)
        heads.append((cid, seq, head))
        log.append((cid, seq, uuid.uuid4(), "c", "p", ["identity"], "/", now, b"{}", bytes(32), head))
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        await conn.copy_records_to_table(
            "sections",
            schema_name="projection",
            columns=["citizen_id", "department", "state", "event_count", "last_event_at", "chain_seq", "chain_head"],
            records=sections,
        )
        await conn.copy_records_to_table(
            "event_archive",
            schema_name="projection",
            columns=ARCHIVE_COLUMNS,
            records=archive,
        )
        await conn.copy_records_to_table("access_log_heads", columns=["citizen_id", "chain_seq", "head"], records=heads)
        await conn.copy_records_to_table(
            "access_log",
            columns=[
                "citizen_id",
                "chain_seq",
                "request_id",
                "consumer",
                "purpose",
                "sections",
                "endpoint",
                "accessed_at",
                "body",
                "prev_hash",
                "hash",
            ],
            records=log,
        )
        await conn.execute("VACUUM ANALYZE")
        size = await conn.fetchval("SELECT pg_total_relation_size('projection.sections')")
    finally:
        await conn.close()
    print(
        f"{citizens:,} citizens: {len(sections):,} archive chains, {len(heads):,} access-log chains; "
        f"projection.sections {size / 2**20:,.0f} MiB",
        flush=True,
    )
    return len(sections), len(heads)


async def move(database: str, share: float, round_: int) -> int:
    """Move ``share`` of the chains on by one link (a new archive row / access-log entry at the new head)."""
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        async with conn.transaction():
            moved = await conn.fetch(
                "UPDATE projection.sections SET chain_seq = chain_seq + 1, "
                "chain_head = sha256(chain_head || $2::bytea) WHERE random() < $1 "
                "RETURNING citizen_id, department, chain_seq, chain_head",
                share,
                str(round_).encode(),
            )
            await conn.executemany(
                "INSERT INTO projection.event_archive (citizen_id, department, chain_seq, event_id, event_type, "
                "schema_version, occurred_at, recorded_at, topic, kafka_partition, kafka_offset, body, prev_hash, "
                "hash) VALUES ($1, $2, $3, gen_random_uuid(), 'x', 1, now(), now(), 't', 0, 0, '{}', '', $4)",
                [tuple(r) for r in moved],
            )
            logged = await conn.fetch(
                "UPDATE access_log_heads SET chain_seq = chain_seq + 1, head = sha256(head || $2::bytea) "
                "WHERE random() < $1 RETURNING citizen_id, chain_seq, head",
                share,
                str(round_).encode(),
            )
            await conn.executemany(
                "INSERT INTO access_log (citizen_id, chain_seq, request_id, consumer, purpose, sections, endpoint, "
                "accessed_at, body, prev_hash, hash) VALUES ($1, $2, gen_random_uuid(), 'c', 'p', '{identity}', "
                "'/', now(), '{}', '', $3)",
                [tuple(r) for r in logged],
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return len(moved) + len(logged)


async def timed_anchor(service: AnchorService, label: str, *, force: bool) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = await service.anchor_once("manual", force=force, wait_lock_s=10)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    held = outcome.signed.anchor.held_total if outcome.signed else 0
    parts = "; ".join(
        f"{log} " + ", ".join(f"{k} {v * 1000:,.0f}" for k, v in a.seconds.items())
        for log, a in outcome.advances.items()
    )
    print(
        f"  {label:<34} {outcome.status:<10} {wall * 1000:8,.0f} ms wall, builder transaction "
        f"{outcome.build_ms:7,.0f} ms, {cpu * 1000:7,.0f} ms CPU here; held {held}"
        + (f"\n      ({parts} ms)" if parts else ""),
        flush=True,
    )


async def main(infra: Endpoints, citizens: int) -> None:
    namespace = await bench_namespace(infra, "benchanchor")
    database = await fresh_database(infra, "anchor")
    settings = bench_settings(infra, database, namespace).model_copy(update={"audit_anchor_key_file": TEST_ANCHOR_KEY})
    try:
        await fill(database, citizens, await real_states(database), namespace)
        service = AnchorService.from_settings(settings)
        try:
            await timed_anchor(service, "first anchor (every chain new)", force=True)
            await timed_anchor(service, "nothing moved (unchanged check)", force=False)
            await timed_anchor(service, "nothing moved, forced", force=True)
            for round_, share in enumerate((0.01, 0.10), start=1):
                moved = await move(database, share, round_)
                await timed_anchor(service, f"{share:.0%} moved ({moved:,} chains)", force=False)
        finally:
            await service.close()
        public_key, _ = trusted_public_key(settings)
        conn = await asyncpg.connect(asyncpg_dsn(database))
        try:
            async with kafka_consumer(settings) as consumer:
                started = time.perf_counter()
                report, _ = await check_against_anchor(conn, consumer, namespace=namespace, public_key=public_key)
                print(
                    f"  verify against the anchor: {time.perf_counter() - started:,.1f} s, "
                    f"{report.findings_total} findings",
                    flush=True,
                )
        finally:
            await conn.close()
    finally:
        await drop_database(database)
        await delete_namespace_topics(infra.kafka_bootstrap, namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--citizens", type=int, default=100_000)
    args = parser.parse_args()
    with provide() as endpoints:
        asyncio.run(main(endpoints, args.citizens))
