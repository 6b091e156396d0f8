"""How the cost grows with the archive (issue: beyond one machine): the projector's and a read's cost per event
with 1M and with 10M events already archived (``make bench GROWTH=1``; ``python -m benchmarks --only growth``).

One simulated city, streamed from the generator onto fresh topics (never held in memory whole), projected by the
projector service as deployed. At each stage (the archive holding N events):

1. **projector**: the next ``probe`` events of the same city are published, and the projector (one worker per
   core) applies them: events committed per second from its first new batch to the last, and the busy CPU of
   the whole machine (the projector's processes, PostgreSQL, Kafka) over that time, per event;
2. **read**: the query API's own statement for a live read with its access-log entry
   (``single_read.load_resident``), one connection, residents drawn from the whole city: p50, p99 and busy CPU
   per read;
3. **sizes**: the archive, its indexes, the sections table and the access log, on disk.

The goal is flat within 20 % from the first stage to the last; where it is not, the sizes say what grew into the
hot path.
"""

from __future__ import annotations

import random
import time
from itertools import islice
from typing import Any

import asyncpg

from benchmarks.common import (
    bench_namespace,
    bench_settings,
    delete_namespace_topics,
    drop_database,
    free_port,
    fresh_database,
)
from benchmarks.projector import EVENTS_PER_RESIDENT, publish, run_projector
from benchmarks.query_api import GRANT_SECTIONS, PURPOSE, logged_statement_reads
from services.db.dsn import asyncpg_dsn
from services.grants import add_grant
from services.simulator import simulate_bytes
from services.workers import worker_count
from tests.support.infra import Endpoints

PROBE = 100_000
"""Events applied and timed at each stage."""
READ_SECONDS = 10.0


async def _sizes(conn: asyncpg.Connection) -> dict[str, float]:
    """Megabytes on disk: each table with its TOAST, and each of its indexes."""
    rows = await conn.fetch(
        "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS total, pg_relation_size(c.oid) AS heap "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE (n.nspname = 'projection' AND c.relname IN ('event_archive', 'sections')) "
        "OR (n.nspname = 'public' AND c.relname = 'access_log')"
    )
    sizes = {f"{r['name']} (table)": r["heap"] / 2**20 for r in rows}
    indexes = await conn.fetch(
        "SELECT i.relname AS name, pg_relation_size(i.oid) AS size FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE (n.nspname = 'projection' AND t.relname IN ('event_archive', 'sections')) "
        "OR (n.nspname = 'public' AND t.relname = 'access_log')"
    )
    sizes |= {f"{r['name']} (index)": r["size"] / 2**20 for r in indexes}
    return sizes


async def _residents(conn: asyncpg.Connection, sample: int = 5_000) -> list[str]:
    """Residents spread over the whole city with one number (the one-statement read; a number linked to another
    is read by person, through the archive, and measured apart in the query API benchmark)."""
    rows = await conn.fetch(
        "SELECT citizen_id FROM projection.sections WHERE department = 'public_security' AND citizen_id NOT IN "
        "(SELECT old_citizen_id FROM projection.number_links UNION SELECT new_citizen_id FROM projection.number_links)"
        " ORDER BY md5(citizen_id) LIMIT $1",
        sample,
    )
    return [r["citizen_id"] for r in rows]


async def bench_growth(infra: Endpoints, stages: list[int], probe: int = PROBE) -> dict[str, Any]:
    namespace = await bench_namespace(infra, "growth")
    database = await fresh_database(infra, "growth")
    settings = bench_settings(infra, database, namespace)
    workers = worker_count("RENKOU_PROJECTOR_WORKERS")
    residents = (max(stages) + probe * len(stages)) // EVENTS_PER_RESIDENT * 2
    stream = iter(simulate_bytes(residents, seed=7))
    conn = await asyncpg.connect(asyncpg_dsn(database))
    results: list[dict[str, Any]] = []
    try:
        await add_grant(conn, "growth", GRANT_SECTIONS, [PURPOSE])
        archived = 0
        for target in stages:
            fill = target - archived
            print(f"growth: filling the archive to {target:,} events ...", flush=True)
            started = time.perf_counter()
            archived += await publish(infra.kafka_bootstrap, namespace, islice(stream, fill))
            fill_run = await run_projector(settings, archived, free_port(), workers)
            print(
                f"  {fill:,} events published and projected in {time.perf_counter() - started:.0f} s "
                f"(projector {fill_run.rate:,.0f} events/s)",
                flush=True,
            )
            before = archived
            archived += await publish(infra.kafka_bootstrap, namespace, islice(stream, probe))
            run = await run_projector(settings, archived, free_port(), workers)
            cpu_us = 1e6 * run.busy_cpu_s_per_event
            await conn.execute("ANALYZE")  # what autovacuum would have done by now on a live system
            ids = await _residents(conn)
            random.Random(target).shuffle(ids)
            reads = await logged_statement_reads(database, ids, "growth", 1, READ_SECONDS)
            sizes = await _sizes(conn)
            stage = {
                "archived": before,
                "probe": archived - before,
                "rate": run.rate,
                "cpu_us_per_event": cpu_us,
                "read_p50_ms": reads["p50_ms"],
                "read_p99_ms": reads["p99_ms"],
                "read_cpu_us": reads["cpu_us_per_read"],
                "sizes": sizes,
            }
            results.append(stage)
            print(
                f"  at {before:,} archived: projector {run.rate:,.0f} events/s, {cpu_us:,.0f} us of busy CPU per "
                f"event; a logged read p50 {reads['p50_ms']:.2f} ms, p99 {reads['p99_ms']:.2f} ms, "
                f"{reads['cpu_us_per_read']:,.0f} us of CPU",
                flush=True,
            )
    finally:
        await conn.close()
        await drop_database(database)
        await delete_namespace_topics(infra.kafka_bootstrap, namespace)
    return {"stages": results, "workers": workers, "probe": probe}


def growth_section(g: dict[str, Any]) -> list[str]:
    stages = g["stages"]
    first, last = stages[0], stages[-1]

    def change(key: str, higher_is_better: bool = False) -> float:
        ratio = last[key] / first[key] if first[key] else 1.0
        return (1 / ratio if higher_is_better else ratio) - 1

    checks = [
        ("projector cost per event flat within 20 % (busy CPU per event)", change("cpu_us_per_event") <= 0.2),
        ("projector rate flat within 20 %", change("rate", higher_is_better=True) <= 0.2),
        ("a read's p50 flat within 20 %", change("read_p50_ms") <= 0.2),
        ("a read's CPU flat within 20 %", change("read_cpu_us") <= 0.2),
    ]
    lines = [
        "## Growth: cost per event with the archive growing (issue: beyond one machine)",
        "",
        f"One simulated city streamed onto fresh topics; at each stage the projector ({g['workers']} workers) "
        f"applies the next {g['probe']:,} events, then the query API's logged read statement runs "
        f"{READ_SECONDS:.0f} s on one connection over 5,000 residents drawn from the whole city.",
        "",
        "| archived events | projector events/s | busy CPU per event | read p50 | read p99 | CPU per read |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in stages:
        lines.append(
            f"| {s['archived']:,} | {s['rate']:,.0f} | {s['cpu_us_per_event']:,.0f} us | {s['read_p50_ms']:.2f} ms "
            f"| {s['read_p99_ms']:.2f} ms | {s['read_cpu_us']:,.0f} us |"
        )
    lines += [
        "",
        f"From {first['archived']:,} to {last['archived']:,} archived: projector CPU per event "
        f"{change('cpu_us_per_event'):+.0%}, projector rate {change('rate'):+.0%}, read p50 "
        f"{change('read_p50_ms'):+.0%}, CPU per read {change('read_cpu_us'):+.0%} (a minus is cheaper, or for the "
        "rate slower).",
        "",
        "| size on disk (MB) | " + " | ".join(f"{s['archived']:,} archived" for s in stages) + " |",
        "| --- | " + " | ".join("---" for _ in stages) + " |",
    ]
    for name in sorted(last["sizes"]):
        lines.append(f"| {name} | " + " | ".join(f"{s['sizes'].get(name, 0.0):,.0f}" for s in stages) + " |")
    lines += [
        "",
        "| target | met |",
        "| --- | --- |",
        *[f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks],
        "",
    ]
    return lines
