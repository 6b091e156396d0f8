"""What every benchmark needs: a free loopback port, a fresh migrated database of its own, and the cleanup."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.infra.ports import free_port
from services.infra.topics import delete_topics_with_prefixes

__all__ = ["CpuClock", "delete_namespace_topics", "drop_database", "free_port", "fresh_database", "python_probe"]


def _admin_dsn(url: str) -> str:
    return asyncpg_dsn(url).rsplit("/", 1)[0] + "/postgres"


async def fresh_database(base_url: str, label: str = "bench") -> str:
    """Create ``renkou_<label>_<random>`` beside ``base_url``'s database, migrate it, return its URL."""
    name = f"renkou_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_admin_dsn(base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    await upgrade(url)
    return url


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (connections to it are terminated)."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_namespace_topics(bootstrap: str, namespace: str) -> None:
    """Delete every topic of the benchmark's ``namespace`` (its published log)."""
    await delete_topics_with_prefixes(bootstrap, [namespace])


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
