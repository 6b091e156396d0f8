"""What ``renkou simulate`` and ``renkou run`` show while a city is published: records on the department topics,
what the projector applied, the lag between them and the dead letters, sampled from Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from events import DEAD_LETTER_TOPIC, DEPARTMENTS, topic_for
from projections.resident import tables
from projections.resident.reads import PROJECTION
from projections.resident.tables import named
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.kafka.auth import (
    OPERATOR,
    client_options,
)
from services.kafka.metadata import partitions_of
from services.outages import describe, is_outage
from services.settings import Settings


@dataclass
class Sample:
    """Where the backbone stands: records on the department topics, applied by the projector, dead letters."""

    on_kafka: int = 0
    projected: int = 0
    dead_letters: int = 0

    @property
    def lag(self) -> int:
        return max(0, self.on_kafka - self.projected)


class Monitor:
    """Samples log ends (Kafka) and the projector's checkpoints (PostgreSQL) for the progress display."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = [settings.topic_namespace + topic_for(d) for d in DEPARTMENTS]
        self.dead_letter_topic = settings.topic_namespace + DEAD_LETTER_TOPIC
        self._consumer: Any = None
        self._conn: asyncpg.Connection | None = None
        self._partitions: list[Any] = []

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Monitor]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(**client_options(self.settings, OPERATOR), enable_auto_commit=False)
        await consumer.start()
        url = asyncpg_dsn(db_roles.url_for(self.settings, db_roles.OPERATOR))
        try:
            self._conn = await asyncpg.connect(url, timeout=10)
            self._partitions = [
                tp for t in [*self.topics, self.dead_letter_topic] for tp in await partitions_of(consumer, t)
            ]
            self._consumer = consumer
            yield self
        finally:
            if self._conn is not None:
                await self._conn.close()
            await consumer.stop()

    async def sample(self) -> Sample:
        """One sample; raises while Kafka or PostgreSQL is unavailable (the next sample reconnects)."""
        if self._conn is None or self._conn.is_closed():
            # The connection did not survive a restart of PostgreSQL: a new one.
            self._conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url.get_secret_value()), timeout=10)
        ends = await self._consumer.end_offsets(self._partitions)
        try:
            rows = await self._conn.fetch(
                f"SELECT topic, next_offset FROM {named(tables.checkpoints)} WHERE projection = $2 "
                "AND topic = ANY($1::text[])",
                self.topics,
                PROJECTION,
                timeout=10,
            )
        except Exception as exc:
            if is_outage(exc):
                broken, self._conn = self._conn, None
                broken.terminate()
            raise
        return Sample(
            on_kafka=sum(off for tp, off in ends.items() if tp.topic != self.dead_letter_topic),
            projected=sum(int(r["next_offset"]) for r in rows),
            dead_letters=sum(off for tp, off in ends.items() if tp.topic == self.dead_letter_topic),
        )


@dataclass
class Report:
    """What one simulation run did."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    caught_up: bool = False
    last: Sample = field(default_factory=Sample)
    first_rejections: list[str] = field(default_factory=list)


class Display:
    """Two bars (published, projected) and a status line; Rich redraws them from its own thread."""

    waiting: str = ""

    def __init__(self, estimate: int, stream: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:>9}"),
            BarColumn(bar_width=36),
            TextColumn("{task.completed:>9,.0f} / {task.fields[total_text]:<10}"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=stream,
            refresh_per_second=4,
        )
        self.published: TaskID = self.progress.add_task(
            "published", total=estimate, total_text=f"≈{estimate:,}", note=""
        )
        self.projected: TaskID = self.progress.add_task("projected", total=1, total_text="0", note="")
        self.started = time.monotonic()

    def publishing(self, sent: int) -> None:
        rate = sent / max(1e-6, time.monotonic() - self.started)
        self.waiting = ""
        self.progress.update(self.published, completed=sent, note=f"{rate:,.0f} events/s")

    def retrying(self, error: BaseException, wait_s: float) -> None:
        """An outage is being ridden out: say so instead of the rate until the next batch goes through."""
        self.waiting = f"retrying in {wait_s:.0f} s: {describe(error)[:60]}"
        self.progress.update(self.published, note=self.waiting)

    def published_all(self, sent: int) -> None:
        self.progress.update(self.published, completed=sent, total=max(sent, 1), total_text=f"{sent:,}")

    def backbone(self, sample: Sample) -> None:
        self.progress.update(
            self.projected,
            completed=sample.projected,
            total=max(sample.on_kafka, 1),
            total_text=f"{sample.on_kafka:,}",
            note=f"lag {sample.lag:,} · dead letters {sample.dead_letters:,}",
        )

    @contextlib.contextmanager
    def shown(self) -> Iterator[Display]:
        with self.progress:
            yield self


async def watch(monitor: Monitor, display: Display, report: Report, running: asyncio.Event) -> None:
    """Sample every 0.5 s while ``running`` is set; return (between samples) once it is cleared."""
    while running.is_set():
        with contextlib.suppress(Exception):  # a missed sample only delays the display
            report.last = await monitor.sample()
            display.backbone(report.last)
        for _ in range(5):
            if not running.is_set():
                break
            await asyncio.sleep(0.1)
