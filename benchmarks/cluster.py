"""The projector against three brokers beside one (issue: beyond one machine): the same events, the same
projector, first on the session's single broker and then on a three-broker KRaft cluster of its own (replication
factor 3, ``min.insync.replicas=2``, the same jars), both on this machine (``python -m benchmarks --only cluster``).

On one machine the three brokers share its two cores with the projector and PostgreSQL, so this measures what
replication costs in CPU, not what three machines would give.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import SecretStr

from benchmarks.common import (
    bench_namespace,
    bench_settings,
    delete_namespace_topics,
    drop_database,
    free_port,
    fresh_database,
)
from benchmarks.projector import generate, publish_all, run_projector
from services.infra.kafka import KafkaCluster
from services.infra.ports import StackLayout
from services.infra.topics import ensure_topics, load_topics
from services.kafka.principals import ensure_stack_principals
from services.settings import Settings
from services.workers import worker_count
from tests.support.cluster import BROKERS, cluster_layout
from tests.support.infra import Endpoints


@asynccontextmanager
async def three_brokers(infra: Endpoints) -> AsyncIterator[tuple[StackLayout, KafkaCluster]]:
    """A three-broker cluster of its own (ports, folder), with the session's principals and passwords."""
    layout = cluster_layout(infra.state_dir, "bench-cluster", 39092)
    kafka = KafkaCluster(layout)
    try:
        await asyncio.to_thread(kafka.start)  # the launcher waits for the brokers with an event loop of its own
        yield layout, kafka
    finally:
        await asyncio.to_thread(kafka.stop)
        shutil.rmtree(layout.state_dir, ignore_errors=True)


async def bench_cluster(infra: Endpoints, events: int) -> dict[str, Any]:
    print(f"cluster: generating {events:,} simulated events ...", flush=True)
    records = generate(events, seed=3)
    workers = worker_count("RENKOU_PROJECTOR_WORKERS")
    figures: dict[str, Any] = {"events": len(records), "workers": workers}

    # One broker: the session's.
    namespace = await bench_namespace(infra, "single")
    database = await fresh_database(infra, "single")
    try:
        figures["single_publish"] = await publish_all(infra.kafka_bootstrap, namespace, records)
        run = await run_projector(bench_settings(infra, database, namespace), len(records), free_port(), workers)
        figures["single"], figures["single_cpu_us"] = run.rate, 1e6 * run.busy_cpu_s_per_event
        print(f"  one broker: projector {run.rate:,.0f} events/s", flush=True)
    finally:
        await drop_database(database)
        await delete_namespace_topics(infra.kafka_bootstrap, namespace)

    # Three brokers: a cluster of its own, the same topics replicated three times.
    started = time.perf_counter()
    async with three_brokers(infra) as (layout, kafka):
        print(f"  three brokers up in {time.perf_counter() - started:.0f} s", flush=True)
        namespace = f"cluster{uuid.uuid4().hex[:6]}."
        admin = kafka.admin_credentials()
        await ensure_topics(layout.kafka_bootstrap, load_topics(namespace=namespace, brokers=BROKERS), admin)
        await asyncio.to_thread(ensure_stack_principals, layout.kafka_bootstrap, admin, layout.state_dir, namespace)
        database = await fresh_database(infra, "cluster")
        try:
            figures["cluster_publish"] = await publish_all(layout.kafka_bootstrap, namespace, records)
            settings = Settings(
                kafka_bootstrap=layout.kafka_bootstrap,
                database_url=SecretStr(database),
                topic_namespace=namespace,
                state_dir=infra.state_dir,
            )
            run = await run_projector(settings, len(records), free_port(), workers)
            figures["cluster"], figures["cluster_cpu_us"] = run.rate, 1e6 * run.busy_cpu_s_per_event
            print(f"  three brokers: projector {run.rate:,.0f} events/s", flush=True)
        finally:
            await drop_database(database)
    return figures


def cluster_section(c: dict[str, Any]) -> list[str]:
    ratio = c["cluster"] / c["single"]
    return [
        "## Projector on three brokers (issue: beyond one machine)",
        "",
        f"{c['events']:,} simulated events, published (acks=all, idempotent) and projected by the projector as "
        f"deployed ({c['workers']} workers), first on one broker, then on a three-broker KRaft cluster (replication "
        "factor 3, `min.insync.replicas=2`) started from the same jars, all on this machine's two cores.",
        "",
        "| | one broker | three brokers |",
        "| --- | --- | --- |",
        f"| publish, acks=all | {c['single_publish']:,.0f} events/s | {c['cluster_publish']:,.0f} events/s |",
        f"| projector | {c['single']:,.0f} events/s | {c['cluster']:,.0f} events/s |",
        f"| machine CPU per event while projecting | {c['single_cpu_us']:,.0f} µs | {c['cluster_cpu_us']:,.0f} µs |",
        "",
        "| target | met |",
        "| --- | --- |",
        f"| projector on three brokers within noise (10 %) of one broker ({ratio:.2f}×) | "
        f"{'yes' if ratio >= 0.9 else '**no**'} |",
        "",
        "The records are published, and replicated, before the projector starts. While it runs, the three brokers "
        "serve its fetches, replicate its offset commits (`__consumer_offsets`, three replicas, two in sync) and run "
        "their followers' fetch loops: three JVMs on the same two cores as the projector and PostgreSQL. The "
        "machine CPU per event says how much of the difference is CPU. What three machines would give is not "
        "measured here: their brokers' CPU would not be the projector's, but the replicated commits' latency "
        "would remain.",
        "",
    ]
