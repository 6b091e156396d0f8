"""``make bench`` (``python -m benchmarks``): run the benchmarks and write ``benchmarks/RESULTS.md``.

Uses the same infrastructure choice as the tests (explicit endpoints, testcontainers, or the local launchers on
their own ports), fresh topics and a fresh database per run. ``--quick`` uses fewer events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CpuClock,
    bench_namespace,
    bench_settings,
    delete_namespace_topics,
    drop_database,
    free_port,
    fresh_database,
    python_probe,
)
from benchmarks.projector import generate, publish_all, raw_consume, raw_copy, run_projector
from services.workers import worker_count
from tests.support.infra import Endpoints, provide

RESULTS = Path(__file__).with_name("RESULTS.md")
# A quick run never overwrites the full run's figures; it writes beside them, in a git-ignored folder.
QUICK_RESULTS = Path(__file__).parent / "out" / "RESULTS-quick.md"


async def bench_projector(infra: Endpoints, events: int) -> dict[str, Any]:
    namespace = await bench_namespace(infra, "bench")
    database = await fresh_database(infra, "bench")
    print(f"generating {events:,} simulated events ...", flush=True)
    started = time.perf_counter()
    records = generate(events)
    print(f"  {len(records):,} events in {time.perf_counter() - started:.1f}s", flush=True)
    publish_rate = await publish_all(infra.kafka_bootstrap, namespace, records)
    print(f"published at {publish_rate:,.0f} events/s (acks=all)", flush=True)
    consume_rate = await raw_consume(infra.kafka_bootstrap, namespace, len(records))
    print(f"raw aiokafka consume: {consume_rate:,.0f} records/s", flush=True)
    copy = await raw_copy(database, records)
    print(
        f"raw PostgreSQL COPY of the archive rows: {copy.bare:,.0f} rows/s into a bare temporary table, "
        f"{copy.archive_shaped:,.0f} rows/s into an archive-shaped table",
        flush=True,
    )
    settings = bench_settings(infra, database, namespace)
    del records
    # The projector as deployed: one worker process per core, in one consumer group.
    workers = worker_count("RENKOU_PROJECTOR_WORKERS")
    service = await run_projector(settings, events, free_port(), workers)
    print(
        f"projector ({workers} workers): {service.rate:,.0f} events/s sustained ({service.seconds:.1f}s), "
        f"peak RSS {service.peak_rss_mb:.0f} MB per process, {service.total_rss_mb:.0f} MB in all",
        flush=True,
    )
    # One worker process alone, from offset 0 into a fresh database: what a core's worth of projector does.
    settings1 = bench_settings(infra, await fresh_database(infra, "bench"), namespace)
    single = await run_projector(settings1, events, free_port(), 1)
    print(f"one worker process: {single.rate:,.0f} events/s ({single.seconds:.1f}s)", flush=True)
    return {
        "events": events,
        "publish": publish_rate,
        "consume": consume_rate,
        "copy": copy.bare,
        "copy_archive": copy.archive_shaped,
        "workers": workers,
        "projector": service.rate,
        "seconds": service.seconds,
        "processes": service.processes,
        "rss": service.peak_rss_mb,
        "rss_total": service.total_rss_mb,
        "single": single.rate,
        "single_seconds": single.seconds,
        "single_rss": single.peak_rss_mb,
        # The replay benchmark reuses the published log and the live projection of the service run.
        "namespace": namespace,
        "database": database,
        "single_database": settings1.database_url.get_secret_value(),
    }


async def _clean_up(infra: Endpoints, namespace: str, database_urls: list[str]) -> None:
    for url in database_urls:
        await drop_database(url)
    await delete_namespace_topics(infra.kafka_bootstrap, namespace)


def projector_section(p: dict[str, Any]) -> list[str]:
    slower = min(p["consume"], p["copy"])
    ratio = p["projector"] / slower
    checks = [
        ("projector throughput ≥ 20,000 events/s", p["projector"] >= 20000),
        ("≥ 0.5 of the slower raw limit", ratio >= 0.5),
        ("projector peak RSS ≤ 400 MB (every process, and all of them together)", p["rss_total"] <= 400),
    ]
    return [
        "## Projector (issue: the unified resident view)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| events | {int(p['events']):,} simulated, all four departments |",
        f"| publish (aiokafka, acks=all, idempotent) | {p['publish']:,.0f} events/s |",
        f"| raw limit: aiokafka consume, no processing | {p['consume']:,.0f} records/s |",
        f"| raw limit: PostgreSQL `COPY` of the archive rows into a bare temporary table (no index, no WAL) | "
        f"{p['copy']:,.0f} rows/s |",
        f"| PostgreSQL `COPY` of the archive rows into an archive-shaped table (its primary key and `event_id` "
        f"index, WAL-logged) | {p['copy_archive']:,.0f} rows/s |",
        f"| **projector, sustained (events committed/s)**, {p['workers']} worker processes (one per core) | "
        f"**{p['projector']:,.0f} events/s** ({p['seconds']:.1f} s) |",
        f"| projector / slower raw limit | {ratio:.2f} |",
        f"| projector / archive-shaped `COPY` (for comparison; the target is the row above) | "
        f"{p['projector'] / p['copy_archive']:.2f} |",
        f"| projector peak RSS (VmHWM): largest process / all {p['processes']} processes together | "
        f"{p['rss']:.0f} MB / {p['rss_total']:.0f} MB |",
        f"| one worker process alone (`RENKOU_PROJECTOR_WORKERS=1`) | {p['single']:,.0f} events/s "
        f"({p['single_seconds']:.1f} s), peak RSS {p['single_rss']:.0f} MB |",
        "",
        "| target | met |",
        "| --- | --- |",
        *[f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks],
        "",
        "The projector's rate counts events committed to PostgreSQL (archive row with hash-chain link, section "
        "rows, family and household rows, checkpoints, view outbox — one transaction per batch) per second of "
        "wall time from its first committed batch to the last. It runs as `python -m services.projector`, as in "
        "production: a supervisor and one worker per core in one consumer group, Kafka and PostgreSQL on the same "
        "two cores.",
        "",
        "The target's raw limit is the slower of the bare consume and the bare `COPY` (into a temporary table: no "
        "index, no WAL). The archive-shaped `COPY` is shown beside it because the archive rows cannot be stored "
        "for less: a durable table whose primary key orders each citizen's chain and whose `event_id` index "
        "makes duplicates detectable — the projector pays that, and everything above it is the projection.",
        "",
    ]


def gateway_section(g: dict[str, Any]) -> list[str]:
    return [
        "## Gateway (issue: department publishing)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| events | {g['events']:,} simulated, `POST /v1/events:batch` in batches of 1000, separate load process |",
        f"| **ingest, acknowledged by Kafka (acks=all)** | **{g['rate']:,.0f} events/s** ({g['seconds']:.1f} s) |",
        f"| accepted / duplicates / rejected | {g['accepted']:,} / {g['duplicates']:,} / {g['rejected']:,} |",
        "",
        "| target | met |",
        "| --- | --- |",
        f"| ≥ 5,000 events/s | {'yes' if g['rate'] >= 5000 else '**no**'} |",
        "",
    ]


def write_results(sections: list[list[str]], quick: bool, mode: str, probe: float, clock: CpuClock) -> None:
    shares = clock.shares()
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench{' QUICK=1' if quick else ''}` on "
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; infrastructure: "
        f"{mode}. Kafka and PostgreSQL run on the same machine as the measured processes.",
        "",
        f"This machine that day: a plain Python loop of 3,000,000 additions took {probe:.2f} s before the run; over "
        f"the run the CPUs were {shares['busy']:.0%} busy and the host took {shares['steal']:.1%} of their time "
        "(steal). On a shared virtual machine these vary from day to day, and every figure below with them.",
        "",
    ]
    for section in sections:
        lines += section
    target = QUICK_RESULTS if quick else RESULTS
    # The sections this run did not make (those run on their own, each dated) stay as they were.
    made = {section[0] for section in sections}
    kept = [s for s in _sections(target.read_text() if target.exists() else "") if s[0] not in made]
    for section in kept:
        lines += ["", *section] if lines[-1] else section
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines))
    print(f"wrote {target}")


def _sections(text: str) -> list[list[str]]:
    """The ``## `` sections of a results file, each its lines from its heading on (trailing blank lines dropped)."""
    found: list[list[str]] = []
    for line in text.split("\n"):
        if line.startswith("## "):
            found.append([line])
        elif found:
            found[-1].append(line)
    for section in found:
        while section and not section[-1].strip():
            section.pop()
    return found


def replace_section(target: Path, section: list[str], probe: float, clock: CpuClock, command: str) -> None:
    """Put ``section`` in place of the section of the same heading in ``target`` (or at its end), with a line
    saying when and on what it was run: the other sections keep their own run's figures."""
    shares = clock.shares()
    heading, *rest = section
    dated = [
        heading,
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on its own (`{command}`); the Python probe took "
        f"{probe:.2f} s, the CPUs were {shares['busy']:.0%} busy and the host took {shares['steal']:.1%} (steal).",
        *rest,
    ]
    text = target.read_text() if target.exists() else "# Benchmark results\n"
    lines = text.split("\n")
    title = heading.split(" (")[0]
    start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
    if start is None:
        lines = [*lines, "", *dated]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = [*lines[:start], *dated, *lines[end:]]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines))
    print(f"wrote the section {title!r} of {target}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer events (a few minutes in all)")
    parser.add_argument("--events", type=int, default=None, help="events for the projector benchmark")
    benchmarks = ["projector", "replay", "query_api", "gateway", "view_relay"]
    alone = ["growth", "cluster", "standby"]  # long or needing servers of their own: only when asked
    parser.add_argument("--only", choices=[*benchmarks, *alone], action="append", help="run only these")
    parser.add_argument(
        "--growth",
        default="1000000,10000000",
        help="with --only growth: the archive sizes to measure at, comma-separated (default 1M and 10M events)",
    )
    args = parser.parse_args()
    only = set(args.only or benchmarks)
    events = args.events or (100_000 if args.quick else 1_000_000)
    sections: list[list[str]] = []
    probe = python_probe()
    clock = CpuClock()
    print(f"python probe: {probe:.2f} s for 3,000,000 additions", flush=True)
    target = QUICK_RESULTS if args.quick else RESULTS
    if "growth" in only:
        # Long (10M events take the best part of half an hour here).
        from benchmarks.growth import bench_growth, growth_section

        stages = sorted(int(n) for n in args.growth.split(","))
        with provide() as infra:
            figures_g = asyncio.run(bench_growth(infra, stages, probe=20_000 if args.quick else 100_000))
        replace_section(target, growth_section(figures_g), probe, clock, "make bench GROWTH=1")
    if "cluster" in only:
        from benchmarks.cluster import bench_cluster, cluster_section

        with provide() as infra:
            figures_c = asyncio.run(bench_cluster(infra, args.events or (100_000 if args.quick else 500_000)))
        replace_section(target, cluster_section(figures_c), probe, clock, "make bench CLUSTER=1")
    if "standby" in only:
        from benchmarks.standby import bench_standby, standby_section
        from tests.support.standby import pg_pair

        with provide() as infra, pg_pair("bench-standby") as pair:
            figures_s = asyncio.run(
                bench_standby(
                    infra, pair, residents=1_000 if args.quick else 5_000, duration=5.0 if args.quick else 15.0
                )
            )
        replace_section(target, standby_section(figures_s), probe, clock, "make bench STANDBY=1")
    only -= set(alone)
    if not only:
        return
    with provide() as infra:
        projector_rate: float | None = None
        reuse: dict[str, Any] = {}
        leftovers: list[str] = []
        if "projector" in only:
            figures_p = asyncio.run(bench_projector(infra, events))
            projector_rate = figures_p["projector"]
            reuse = {"namespace": figures_p["namespace"], "database_url": figures_p["database"]}
            leftovers = [figures_p["single_database"]]
            sections.append(projector_section(figures_p))
        if "replay" in only:
            from benchmarks.replay import bench_replay, replay_section

            sections.append(replay_section(asyncio.run(bench_replay(infra, events, **reuse)), projector_rate))
        if "query_api" in only:
            from benchmarks.query_api import bench_query_api, results_section

            figures = asyncio.run(
                bench_query_api(infra, residents=1_000 if args.quick else 5_000, duration=5.0 if args.quick else 15.0)
            )
            sections.append(results_section(figures))
        if "gateway" in only:
            from benchmarks.gateway import bench_gateway

            sections.append(gateway_section(asyncio.run(bench_gateway(infra, 20_000 if args.quick else 200_000))))
        if "view_relay" in only:
            from benchmarks.view_relay import bench_view_relay, view_relay_section

            sections.append(view_relay_section(asyncio.run(bench_view_relay(infra, 5_000))))
        from benchmarks.handshakes import bench_handshakes, handshakes_section

        sections.append(handshakes_section(asyncio.run(bench_handshakes(infra, infra.database_url))))
        if only == set(benchmarks):
            write_results(sections, args.quick, infra.description, probe, clock)
        else:  # some of them: each replaces its own section, dated, and the others keep their run's figures
            command = "python -m benchmarks " + " ".join(f"--only {name}" for name in sorted(only))
            for section in sections[:-1]:  # the handshakes, measured on every run, stay with the full run's
                replace_section(target, section, probe, clock, command)
        if reuse:
            # The projector's log and projection (kept for the replay benchmark) go last: dropping a database
            # makes PostgreSQL write a checkpoint, which would weigh on whatever benchmark came next.
            asyncio.run(_clean_up(infra, reuse["namespace"], [reuse["database_url"], *leftovers]))


if __name__ == "__main__":
    main()
