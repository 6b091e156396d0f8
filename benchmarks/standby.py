"""Reads from a standby (CONTRACT §13): the query API as two processes, on a primary with a synchronous standby.

One simulated city is projected into the primary of a pair of PostgreSQL servers of this benchmark's own (the
standby streams it synchronously). Then the query API (``python -m services.query_api``, one worker process per
core: two here) serves the same closed-loop HTTP load as ``benchmarks.query_api`` twice:

1. ``RENKOU_ACCESS_LOG=postgresql``: reads on the primary, each read's entries appended in its own transaction,
   whose commit waits for the standby (synchronous replication) — what a highly available deployment pays today.
2. ``RENKOU_ACCESS_LOG=kafka`` with ``RENKOU_READ_DATABASE_URL`` naming the standby alone: reads on the standby in
   read-only transactions, each read's entries on ``population.access_log.v1`` (acks=all) before its answer, and
   the relay in the same processes chaining them into the primary.

For the second, every entry on the topic must be in ``access_log`` afterwards (the relay's stored offsets reach the
topic's end), and how long an entry takes to reach the chains after its read was answered is measured on its own:
sequential reads, each followed by polling the primary for its entry.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from benchmarks.common import (
    CpuClock,
    bench_namespace,
    delete_namespace_topics,
    java_pids,
    tree_cpu_seconds,
)
from benchmarks.query_api import (
    GRANT_SECTIONS,
    PURPOSE,
    TARGET_RATE,
    latency_summary,
    load_run,
    populate,
    query_api_process,
)
from events import ACCESS_LOG_TOPIC
from services.db.dsn import asyncpg_dsn
from services.grants import add_grant
from services.kafka.metadata import partitions_of
from tests.support.infra import Endpoints, kafka_options
from tests.support.standby import Pair, standby_caught_up

VISIBILITY_READS = 200
P99_TARGET_MS = 15.0


async def bench_standby(
    infra: Endpoints, pair: Pair, residents: int = 5_000, duration: float = 15.0, concurrency: int = 8
) -> dict[str, Any]:
    """Both runs against ``pair`` (and ``infra``'s Kafka); figures for ``benchmarks/RESULTS.md``."""
    namespace = await bench_namespace(infra, "standby")
    primary = pair.layout.database_url
    try:
        print(f"standby: projecting a simulated city of {residents:,} residents into the primary ...", flush=True)
        events, ids, _ = await populate(primary, residents)
        conn = await asyncpg.connect(asyncpg_dsn(primary))
        try:
            token = await add_grant(conn, "bench", GRANT_SECTIONS, [PURPOSE])
        finally:
            await conn.close()
        await standby_caught_up(pair, wait_s=300)
        ids_file = tempfile.NamedTemporaryFile("w", prefix="bench-ids-", suffix=".txt", delete=False)  # noqa: SIM115
        ids_file.write("\n".join(ids))
        ids_file.close()
        figures: dict[str, Any] = {"residents": len(ids), "events": events, "concurrency": concurrency}
        try:
            for mode in ("postgresql", "kafka"):
                figures[mode] = await _run(
                    infra, pair, namespace, mode, token, ids, ids_file.name, duration, concurrency
                )
        finally:
            os.unlink(ids_file.name)
        return figures
    finally:
        await delete_namespace_topics(infra.kafka_bootstrap, namespace)


async def _run(
    infra: Endpoints,
    pair: Pair,
    namespace: str,
    mode: str,
    token: str,
    ids: list[str],
    ids_file: str,
    duration: float,
    concurrency: int,
) -> dict[str, Any]:
    primary = pair.layout.database_url
    before_api = await _entries(primary)
    settings = {
        "RENKOU_DATABASE_URL": primary,
        "RENKOU_STATE_DIR": str(pair.layout.state_dir),  # the pair's roles and the session's Kafka principals
        "RENKOU_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "RENKOU_TOPIC_NAMESPACE": namespace,
        "RENKOU_ACCESS_LOG": mode,
    }
    if mode == "kafka":
        settings["RENKOU_READ_DATABASE_URL"] = pair.standby_url
    with query_api_process(settings, f"standby-{mode}") as (url, proc):
        await asyncio.to_thread(load_run, url, token, ids_file, concurrency, 300.0, len(ids), sweep=True)
        before = await _entries(primary)
        parts = {
            "query API": [proc.pid],
            "PostgreSQL primary": [pid for pid in [pair.stack.postgres.pid()] if pid is not None],
            "PostgreSQL standby": [pid for pid in [pair.stack.standby and pair.stack.standby.pid()] if pid],
            "Kafka": java_pids(),
        }
        clock = CpuClock()
        used_before = tree_cpu_seconds(parts)
        result = await asyncio.to_thread(load_run, url, token, ids_file, concurrency, duration, 400_000)
        finished = time.perf_counter()
        used = tree_cpu_seconds(parts)
        busy = clock.busy_seconds()
        reads = max(1, int(result["requests"]))
        cpu_parts = {part: 1e6 * (used[part] - used_before[part]) / reads for part in parts}
        cpu_parts["load generator and the rest"] = 1e6 * busy / reads - sum(cpu_parts.values())
        figures: dict[str, Any] = {
            "rate": result["rate"],
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "max_ms": result["max_ms"],
            "cpu_us": result["cpu_us_per_read"],
            "requests": result["requests"],
            "ok": int(result["statuses"].get("200", 0)),
            "statuses": result["statuses"],
            "cpu_parts": cpu_parts,
        }
        if mode == "kafka":
            on_topic = await _topic_records(infra, namespace)
            figures["drain_s"] = await _drained(primary, namespace, on_topic) - finished
            figures["on_topic"] = on_topic
            figures["visibility"] = await _visibility(url, token, ids, primary)
            # Every entry this API process put on the topic (warm-up, load, the reads just above) is in the chains,
            # once: the relay's offsets reach the topic's end, and the new rows are exactly as many as the records.
            on_topic = await _topic_records(infra, namespace)
            await _drained(primary, namespace, on_topic)
            figures["all_chained"] = await _entries(primary) - before_api == on_topic
        figures["entries"] = await _entries(primary) - before
    print(
        f"  {mode}: {figures['rate']:,.0f} reads/s, p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
        f"{figures['cpu_us']:,.0f} us of machine CPU per read, {figures['entries']:,} access-log entries"
        + (
            f"; chains caught up {figures['drain_s']:.2f} s after the load; an entry visible p50 "
            f"{figures['visibility']['p50_ms']:.0f} ms, p99 {figures['visibility']['p99_ms']:.0f} ms after its answer"
            if mode == "kafka"
            else ""
        ),
        flush=True,
    )
    print("    machine CPU per read: " + ", ".join(f"{k} {v:,.0f} us" for k, v in cpu_parts.items()), flush=True)
    return figures


async def _entries(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM access_log"))
    finally:
        await conn.close()


async def _topic_records(infra: Endpoints, namespace: str) -> int:
    """How many records the access-log topic holds (the sum of its partitions' end offsets)."""
    topic = namespace + ACCESS_LOG_TOPIC
    consumer = AIOKafkaConsumer(**kafka_options(infra.kafka_bootstrap))
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            raise RuntimeError(f"the topic {topic} does not exist")
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _drained(database_url: str, namespace: str, on_topic: int, wait_s: float = 120.0) -> float:
    """When the relay's stored offsets reached ``on_topic`` (perf_counter); raises if they do not."""
    topic = namespace + ACCESS_LOG_TOPIC
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        deadline = time.perf_counter() + wait_s
        while True:
            done = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM access_log_offsets WHERE topic = $1", topic
            )
            if done >= on_topic:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the relay chained {done:,} of {on_topic:,} entries within {wait_s:.0f}s")
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def _visibility(url: str, token: str, ids: list[str], database_url: str) -> dict[str, float]:
    """Sequential reads; after each, how long until its entry is in the primary's ``access_log``."""
    delays: list[float] = []
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": PURPOSE}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for citizen_id in ids[:VISIBILITY_READS]:
                got = await client.get(f"/v1/residents/{citizen_id}", headers=headers)
                answered = time.perf_counter()
                got.raise_for_status()
                request_id = uuid.UUID(got.headers["X-Request-ID"])
                while not await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM access_log WHERE request_id = $1)", request_id
                ):
                    if time.perf_counter() - answered > 30:
                        raise RuntimeError(f"the entry of read {request_id} did not reach the chains in 30 s")
                    await asyncio.sleep(0.002)
                delays.append(time.perf_counter() - answered)
    finally:
        await conn.close()
    summary = latency_summary(delays, sum(delays))
    return {"p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"], "max_ms": summary["max_ms"]}


def standby_section(s: dict[str, Any]) -> list[str]:
    pg, kafka = s["postgresql"], s["kafka"]
    met_rate = kafka["rate"] >= TARGET_RATE
    met_p99 = kafka["p99_ms"] <= P99_TARGET_MS
    v = kafka["visibility"]
    return [
        "## Reads from a standby (issue: beyond one machine)",
        "",
        f"{s['residents']:,} residents ({s['events']:,} events) in a primary with a synchronous hot standby, both "
        "on this machine; the query API as deployed (one worker process per core: two), a closed loop of "
        f"{s['concurrency']} keep-alive connections of `GET /v1/residents/{{id}}` after a warm-up read of every "
        "resident, the load generator in a process of its own. Kafka, both PostgreSQL servers, the API and the load "
        "share the two cores.",
        "",
        "| | access log in PostgreSQL, reads on the primary | access log through Kafka, reads on the standby |",
        "| --- | --- | --- |",
        f"| reads/s | {pg['rate']:,.0f} | **{kafka['rate']:,.0f}** |",
        f"| p50 / p99 / max | {pg['p50_ms']:.2f} / {pg['p99_ms']:.2f} / {pg['max_ms']:.1f} ms | "
        f"{kafka['p50_ms']:.2f} / {kafka['p99_ms']:.2f} / {kafka['max_ms']:.1f} ms |",
        f"| machine CPU per read | {pg['cpu_us']:,.0f} µs | {kafka['cpu_us']:,.0f} µs |",
        *(
            f"| … of it in {part} | {pg['cpu_parts'][part]:,.0f} µs | {kafka['cpu_parts'][part]:,.0f} µs |"
            for part in pg["cpu_parts"]
        ),
        f"| answered 200 / access-log entries written | {pg['ok']:,} / {pg['entries']:,} | "
        f"{kafka['ok']:,} / {kafka['entries']:,} |",
        f"| entries on the topic at the end of the load / all chained | — | {kafka['on_topic']:,} / "
        f"{'yes' if kafka['all_chained'] else '**no**'}, {kafka['drain_s']:.2f} s after the load ended |",
        f"| an entry in the citizen's log after its answer ({VISIBILITY_READS} sequential reads) | at once (same "
        f"transaction) | p50 {v['p50_ms']:.0f} ms, p99 {v['p99_ms']:.0f} ms, max {v['max_ms']:.0f} ms |",
        "",
        "| target (two API processes reading from the standby) | met |",
        "| --- | --- |",
        f"| ≥ {TARGET_RATE:,.0f} reads/s | {'yes' if met_rate else '**no**'} |",
        f"| p99 ≤ {P99_TARGET_MS:.0f} ms | {'yes' if met_p99 else '**no**'} |",
        "| every read's access-log record durable before its answer | "
        + ("yes (acks=all; every entry chained, once)" if kafka["all_chained"] else "**no**: entries missing")
        + " |",
        "",
    ]
