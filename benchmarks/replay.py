"""Rebuild throughput: ``renkou replay`` from offset 0 into a shadow schema, events per second.

Target: at least the live projector's rate, and 1,000,000 events in at most 60 s on the 2-core machine.

Either hand over what the projector benchmark already built (``namespace`` with the events published and the
``database_url`` it projected into — then ``verify`` is timed as well, against that live projection), or let
this benchmark generate, publish and use a fresh database of its own.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import bench_namespace, bench_settings, delete_namespace_topics, drop_database, fresh_database
from benchmarks.projector import generate, publish_all
from services.operations.replay import DEFAULT_BATCH, default_workers, replay
from services.operations.schemas import DEFAULT_SHADOW
from tests.support.infra import Endpoints

TARGET_SECONDS_PER_MILLION = 60.0


async def bench_replay(
    infra: Endpoints,
    events: int = 1_000_000,
    *,
    namespace: str | None = None,
    database_url: str | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    verify_after: bool | None = None,
) -> dict[str, Any]:
    """Replay ``events`` events from offset 0 into a fresh shadow; return the figures.

    ``verify_after`` (default: when a ``database_url`` with a live projection was given) also times
    ``verify`` — the shadow brought to the live checkpoints and compared row by row.
    """
    own_namespace = namespace is None
    if namespace is None:
        namespace = await bench_namespace(infra, "benchr")
        print(f"generating and publishing {events:,} simulated events ...", flush=True)
        records = generate(events)
        await publish_all(infra.kafka_bootstrap, namespace, records)
        events = len(records)
        del records
    own_database = database_url is None
    database = database_url or await fresh_database(infra, "bench_replay")
    settings = bench_settings(infra, database, namespace)
    workers = workers or default_workers()
    print(f"replaying into {DEFAULT_SHADOW} with {workers} worker(s), batches of {batch_size} ...", flush=True)
    started = time.perf_counter()
    report = await replay(settings, DEFAULT_SHADOW, fresh=True, workers=workers, batch_size=batch_size)
    seconds = time.perf_counter() - started
    rate = report.events / seconds
    print(
        f"replay: {report.events:,} events in {seconds:.1f} s = {rate:,.0f} events/s "
        f"({report.stats.applied:,} applied, {report.stats.retries} batch retries)",
        flush=True,
    )
    figures: dict[str, Any] = {
        "events": report.events,
        "seconds": seconds,
        "rate": rate,
        "workers": report.workers,
        "batch": batch_size,
        "applied": report.stats.applied,
        "retries": report.stats.retries,
        "target_met": seconds <= TARGET_SECONDS_PER_MILLION * report.events / 1_000_000,
    }
    if verify_after if verify_after is not None else not own_database:
        from services.operations.verify import verify

        started = time.perf_counter()
        checked = await verify(settings, DEFAULT_SHADOW, workers=workers, batch_size=batch_size)
        figures["verify_seconds"] = time.perf_counter() - started
        figures["verify_identical"] = checked.identical
        print(f"verify: identical={checked.identical} in {figures['verify_seconds']:.1f} s", flush=True)
    # What this benchmark made goes again; what the caller lent, the caller cleans up.
    if own_database:
        await drop_database(database)
    if own_namespace:
        await delete_namespace_topics(infra.kafka_bootstrap, namespace)
    return figures


def replay_section(r: dict[str, Any], projector_rate: float | None = None) -> list[str]:
    """The Markdown lines of this benchmark for ``benchmarks/RESULTS.md`` (``projector_rate``: the live
    projector's events/s from the projector benchmark, to check "at least the live projector's rate")."""
    lines = [
        "## Rebuild (`renkou replay` into a shadow schema)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| events replayed from offset 0 | {int(r['events']):,} |",
        f"| worker processes × records per transaction | {r['workers']} × {r['batch']:,} |",
        f"| **replay, wall time (events/s)** | **{r['rate']:,.0f} events/s** ({r['seconds']:.1f} s) |",
    ]
    if "verify_seconds" in r:
        lines.append(
            f"| verify (catch up + row-by-row comparison) | {r['verify_seconds']:.1f} s, identical: "
            f"{'yes' if r['verify_identical'] else '**no**'} |"
        )
    checks = [(f"1M events in ≤ {TARGET_SECONDS_PER_MILLION:.0f} s (pro rata)", bool(r["target_met"]))]
    if projector_rate is not None:
        checks.append(("replay ≥ the live projector's rate", r["rate"] >= projector_rate))
    lines += ["", "| target | met |", "| --- | --- |", *[f"| {n} | {'yes' if ok else '**no**'} |" for n, ok in checks]]
    lines += [
        "",
        "Wall time from the command's start (shadow created, worker processes spawned) until every partition's "
        "shadow checkpoint reached the log end taken at start; the same `BatchProjector` as the live projector.",
        "",
    ]
    return lines
