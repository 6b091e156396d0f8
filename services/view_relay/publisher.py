"""Publishing changed views to the compacted ``population.resident_view.v1`` topic and the consumers' own.

The projector's batch transaction records changed citizens in ``view_outbox`` and NOTIFYs at commit; this loop
wakes, publishes their current views and removes the outbox rows it published — so a crash between commit and
publish loses nothing, and a burst of changes to one citizen is published once. One publisher at a time (a
PostgreSQL advisory lock), so an older view can never overtake a newer one on the topic. It runs as a process
of its own, so that rendering views never takes CPU from projecting events.

The main topic carries every section and is readable by no consumer; each grant with a view topic gets its
purpose's sections on a topic of its own, every delivery recorded in the access log (``consumer_topics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from events import RESIDENT_VIEW_TOPIC
from projections.resident.reads import pending_views
from projections.resident.store import VIEW_OUTBOX_CHANNEL, clear_views
from services.db.engine import driver_connection
from services.residents.views import load_views
from services.retry import DAEMON_RETRY, any_error
from services.view_relay.consumer_topics import ConsumerTopics

_LOCK_KEY = 0x7669657770756273  # "viewpubs": at most one relay publishes at a time
BATCH = 500
log = logging.getLogger("renkou.view_relay")


class ViewPublisher:
    """Drains ``<schema>.view_outbox`` into the view topic, woken by NOTIFY and every ``poll_s`` seconds."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        schema: str,
        namespace: str,
        published: Counter,
        today: Callable[[], date],
        consumer_topics: ConsumerTopics,
        poll_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.schema = schema
        self.topic = namespace + RESIDENT_VIEW_TOPIC
        self.published = published
        self.today = today
        self.consumer_topics = consumer_topics
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self, listen_dsn: str) -> None:
        self._listener = await asyncpg.connect(listen_dsn)
        await self._listener.add_listener(VIEW_OUTBOX_CHANNEL, lambda *_: self._wake.set())
        self._task = asyncio.create_task(self.run(), name="view-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()

    async def run(self) -> None:
        """Publish what the outbox holds whenever a commit wakes the relay, or every ``poll_s``, until cancelled
        (``start`` runs it as a task)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            # Whatever fails (PostgreSQL or Kafka away, a bug) is retried with the one policy's backoff for as long
            # as the relay runs: the outbox keeps what is not published yet.
            await DAEMON_RETRY.retrying("publishing views", retryable=any_error)(self._drain)

    async def _drain(self) -> None:
        while await self.publish_pending():
            pass

    async def publish_pending(self) -> bool:
        """Publish up to one batch of pending views (to the main topic and the consumers'), and a batch of each
        consumer topic still being filled; return whether more is waiting."""
        async with driver_connection(self.engine) as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return False
            try:
                today = self.today()
                consumers = await self.consumer_topics.consumers(conn)
                pending = await pending_views(conn, BATCH, self.schema)
                if pending:
                    ids = [cid for cid, _ in pending]
                    # Keyed by the person's current number (§12): a superseded number's change shows under the
                    # person, and the record the superseded number had is removed (a tombstone).
                    loaded = await load_views(conn, ids, today, self.schema)
                    views = {v["citizen_id"]: v for v in loaded.values()}
                    superseded = sorted(cid for cid, view in loaded.items() if view["citizen_id"] != cid)
                    futures = [
                        await self.producer.send(
                            self.topic, key=cid.encode(), value=orjson.dumps(view, option=orjson.OPT_SORT_KEYS)
                        )
                        for cid, view in views.items()
                    ]
                    futures += [
                        await self.producer.send(self.topic, key=cid.encode(), value=None) for cid in superseded
                    ]
                    await asyncio.gather(*futures)
                    await self.consumer_topics.deliver(conn, consumers, views, superseded)
                    # Only rows not re-enqueued meanwhile: a newer change keeps its row and is published next round.
                    await clear_views(conn, pending, self.schema)
                    self.published.inc(len(views))
                backfilling = await self.consumer_topics.backfill(conn, consumers, today)
                return len(pending) == BATCH or backfilling
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
