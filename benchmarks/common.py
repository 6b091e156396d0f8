"""What every benchmark needs: a free loopback port, a fresh migrated database of its own, and the cleanup."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil  # type: ignore[import-untyped]
from pydantic import SecretStr

from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.db.roles import create_database
from services.infra.ports import free_port
from services.infra.topics import delete_topics_with_prefixes, ensure_topics, load_topics
from services.kafka.principals import STACK_PRINCIPALS, grant_role, revoke_roles
from services.settings import Settings
from tests.support.infra import Endpoints, current

__all__ = [
    "CpuClock",
    "bench_namespace",
    "bench_settings",
    "delete_namespace_topics",
    "drop_database",
    "free_port",
    "fresh_database",
    "python_probe",
]


def _admin_dsn(url: str) -> str:
    return asyncpg_dsn(url).rsplit("/", 1)[0] + "/postgres"


async def fresh_database(infra: Endpoints, label: str = "bench") -> str:
    """Create ``renkou_<label>_<random>`` (owned by the owner role) beside ``infra``'s database, migrate it,
    return the owner's URL of it (services started on it connect as their own roles, see ``bench_settings``)."""
    name = f"renkou_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_admin_dsn(infra.superuser_url))
    try:
        await create_database(conn, name)
    finally:
        await conn.close()
    url = infra.database_url.rsplit("/", 1)[0] + f"/{name}"
    await upgrade(url)
    return url


async def bench_namespace(infra: Endpoints, prefix: str) -> str:
    """A fresh namespace of the contract's topics, with the stack principals' roles over them."""
    namespace = f"{prefix}{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka_bootstrap, load_topics(namespace=namespace), infra.kafka_admin)
    if infra.secured:
        await asyncio.to_thread(grant_role, infra.kafka_bootstrap, infra.kafka_admin, STACK_PRINCIPALS, namespace)
    return namespace


def bench_settings(infra: Endpoints, database_url: str, namespace: str) -> Settings:
    """A service's settings on the benchmark's stack (its principals' secrets in the stack's state folder)."""
    return Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_namespace=namespace,
        state_dir=infra.state_dir,
    )


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (connections to it are terminated)."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_admin_dsn(current().superuser_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_namespace_topics(bootstrap: str, namespace: str) -> None:
    """Delete every topic of the benchmark's ``namespace`` (its published log) and the roles' bindings there."""
    infra = current()
    await delete_topics_with_prefixes(bootstrap, [namespace], infra.kafka_admin)
    if infra.secured:
        await asyncio.to_thread(revoke_roles, bootstrap, infra.kafka_admin, STACK_PRINCIPALS, namespace)


def python_probe(iterations: int = 3_000_000) -> float:
    """Seconds a plain Python loop of ``iterations`` additions takes: how fast this machine runs Python today
    (shared virtual machines vary from day to day; the figure makes two runs' results comparable)."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i
    return time.perf_counter() - started


def _cpu_ticks() -> list[int]:
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


@dataclass
class CpuClock:
    """The machine's CPU time over a run, from ``/proc/stat``: how busy it was, and how much the host took."""

    start: list[int] = field(default_factory=_cpu_ticks)

    def _delta(self) -> tuple[int, int, int]:
        # (all ticks, idle ticks, stolen ticks) since start, over every core
        now = _cpu_ticks()
        delta = [b - a for a, b in zip(self.start, now, strict=False)]
        return sum(delta[:8]), delta[3] + delta[4], delta[7] if len(delta) > 7 else 0

    def shares(self) -> dict[str, float]:
        """Shares of all CPU time since ``start``: ``busy`` (user, system, …) and ``steal`` (taken by the host)."""
        total, idle, steal = self._delta()
        total = total or 1
        return {"busy": (total - idle - steal) / total, "steal": steal / total}

    def busy_seconds(self) -> float:
        """CPU seconds the machine's cores spent busy since ``start`` (every process; idle and steal excluded)."""
        total, idle, steal = self._delta()
        return (total - idle - steal) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(parts: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part: the processes ``parts`` names and their descendants.
    Two readings' difference says where a run's CPU went (processes that ended between them are not counted)."""
    seconds: dict[str, float] = {}
    for part, roots in parts.items():
        total = 0.0
        for pid in roots:
            try:
                root = psutil.Process(pid)
                for process in [root, *root.children(recursive=True)]:
                    times = process.cpu_times()
                    total += times.user + times.system
            except psutil.Error:
                continue  # gone meanwhile
        seconds[part] = total
    return seconds


def java_pids() -> list[int]:
    """The Java processes of this machine's user: the Kafka brokers the benchmarks run against."""
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "java"]
