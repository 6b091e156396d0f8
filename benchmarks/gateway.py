"""Gateway ingest throughput: the batch endpoint, acks=all, as a department system would load it.

The gateway runs as its own process (``python -m services.gateway``, as in production) against fresh topics and
a fresh database; the load comes from another process (``python -m benchmarks.gateway --load ...``) on the
loopback interface: ``lanes`` connections, each sending batches of 1000 simulated events one after another.
The figure is events acknowledged by Kafka (202) per second of wall time, seen by the load process, from its
first request to its last answer. The run is bounded by a number of events and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import bench_namespace, delete_namespace_topics, drop_database, free_port, fresh_database
from events import DEPARTMENTS
from services.db.dsn import asyncpg_dsn
from services.gateway.__main__ import workers as gateway_workers
from services.gateway.auth import issue_token
from services.kafka.metadata import partitions_of
from services.publisher.gateway_client import GatewayClient
from services.settings import project_root
from services.simulator import simulate_bytes
from tests.support.infra import Endpoints, kafka_options

EVENTS_PER_RESIDENT = 50


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def bench_gateway(
    infra: Endpoints,
    events: int = 200_000,
    *,
    lanes: int = 8,
    batch: int = 1000,
    workers: int | None = None,
    time_limit_s: float = 600.0,
) -> dict[str, Any]:
    """Measure the gateway's batch ingest; return the figures (``rate`` is events/s acknowledged by Kafka).

    ``workers`` is the gateway's worker processes (default: its own default, one per core up to four).
    """
    workers = workers or gateway_workers()
    namespace = await bench_namespace(infra, "benchgw")
    database = await fresh_database(infra, "bench_gw")
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        tokens = {d: await issue_token(conn, d, "benchmark") for d in DEPARTMENTS}
    finally:
        await conn.close()

    port = free_port()
    env = {
        **os.environ,
        "RENKOU_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "RENKOU_DATABASE_URL": database,
        "RENKOU_TOPIC_NAMESPACE": namespace,
        "RENKOU_STATE_DIR": str(infra.state_dir),
        "RENKOU_GATEWAY_PORT": str(port),
        "RENKOU_GATEWAY_WORKERS": str(workers),
    }
    with tempfile.TemporaryDirectory(prefix="renkou-bench-gw-") as tmp:
        log_path = Path(tmp) / "gateway.log"
        tokens_path = Path(tmp) / "tokens.json"
        tokens_path.write_text(json.dumps(tokens))
        with log_path.open("wb") as log:
            gateway = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.gateway", env=env, cwd=project_root(), stdout=log, stderr=log
            )
        try:
            deadline = time.monotonic() + 60
            while not _healthy(port):
                if gateway.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway did not start:\n{log_path.read_text()[-3000:]}")
                await asyncio.sleep(0.2)
            print(
                f"gateway up on 127.0.0.1:{port}; loading it with {events:,} events in batches of {batch}, "
                f"{lanes} lanes, from a separate process; the gateway has {workers} worker(s) ...",
                flush=True,
            )
            cpu_before = _cpu_seconds(gateway.pid)
            load = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.gateway", "--load", "--url", f"http://127.0.0.1:{port}",
                "--tokens", str(tokens_path), "--events", str(events), "--lanes", str(lanes), "--batch", str(batch),
                cwd=project_root(), stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                out, _ = await asyncio.wait_for(load.communicate(), time_limit_s)
            except TimeoutError:
                load.kill()
                raise
            if load.returncode != 0:
                raise RuntimeError(
                    f"the load process failed ({load.returncode}); gateway log:\n{log_path.read_text()[-3000:]}"
                )
            cpu = _cpu_seconds(gateway.pid) - cpu_before
            peak_rss = _peak_rss_mb(gateway.pid)
            figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            if gateway.returncode is None:
                gateway.terminate()
                try:
                    await asyncio.wait_for(gateway.wait(), 30)
                except TimeoutError:
                    gateway.kill()
                    await gateway.wait()
    await drop_database(database)
    on_kafka = await _count_on_kafka(infra.kafka_bootstrap, namespace)
    await delete_namespace_topics(infra.kafka_bootstrap, namespace)  # counted: the log has served its purpose
    figures.update(
        gateway_workers=workers,
        gateway_peak_rss_mb=peak_rss,
        gateway_cpu_s=cpu,
        gateway_cpu_per_event_us=cpu / max(1, events) * 1e6,
        on_kafka=on_kafka,
        lanes=lanes,
        batch=batch,
    )
    print(
        f"gateway: {figures['rate']:,.0f} events/s acknowledged (acks=all) over {figures['seconds']:.1f}s; "
        f"{figures['accepted']:,} accepted, {figures['rejected']} rejected, {on_kafka:,} on Kafka; "
        f"gateway peak RSS {peak_rss:.0f} MB",
        flush=True,
    )
    return figures


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the gateway's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its descendants so far (``/proc/<pid>/stat``)."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    """The peak resident sets (VmHWM) of a process and its descendants, summed, in MB."""
    total = 0
    for member in _tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
    return total / 1024


async def _count_on_kafka(bootstrap: str, namespace: str) -> int:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(**kafka_options(bootstrap))
    await consumer.start()
    try:
        total = 0
        for department in DEPARTMENTS:
            topic = f"{namespace}population.{department}.v1"
            ends = await consumer.end_offsets(await partitions_of(consumer, topic))
            total += sum(ends.values())
        return total
    finally:
        await consumer.stop()


# --- the load process -----------------------------------------------------------------------------------------


async def _load(url: str, tokens: dict[str, str], events: int, lanes: int, batch: int) -> dict[str, Any]:
    residents = max(1, events // EVENTS_PER_RESIDENT) * 2
    records = list(islice(simulate_bytes(residents, seed=11), events))
    async with GatewayClient(url, tokens) as client:
        started = time.perf_counter()
        tally = await client.publish_stream(records, lanes=lanes, batch_size=batch)
        seconds = time.perf_counter() - started
    return {
        "events": len(records),
        "accepted": tally.accepted,
        "duplicates": tally.duplicates,
        "rejected": tally.rejected,
        "retries": tally.retries,
        "seconds": seconds,
        "rate": tally.accepted / seconds,
        "load_cpu_s": time.process_time(),
    }


def _load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway --load")
    parser.add_argument("--load", action="store_true", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tokens", required=True, type=Path)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("the load goes to the loopback interface only")
    figures = asyncio.run(_load(args.url, json.loads(args.tokens.read_text()), args.events, args.lanes, args.batch))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    _load_main(sys.argv[1:])
