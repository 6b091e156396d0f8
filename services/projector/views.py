"""Publishing changed views to the compacted ``population.resident_view.v1`` topic.

The batch transaction records changed citizens in ``view_outbox``; this loop publishes their current views
and removes the outbox rows it published — so a crash between commit and publish loses nothing, and a burst
of changes to one citizen is published once. One publisher at a time (a PostgreSQL advisory lock), so an
older view can never overtake a newer one on the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.db.engine import driver_connection
from services.resident_views import load_views

if TYPE_CHECKING:
    from projections.resident.store import ProjectionStore
    from services.projector.metrics import ProjectorMetrics

VIEW_TOPIC = "population.resident_view.v1"
_LOCK_KEY = 0x7669657770756273  # "viewpubs"
_BATCH = 500
log = logging.getLogger("renkou.projector.views")


class ViewPublisher:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        store: ProjectionStore,
        namespace: str,
        metrics: ProjectorMetrics,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.schema = store.schema
        self.topic = namespace + VIEW_TOPIC
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="view-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)
            self._wake.clear()
            try:
                while await self.publish_pending() == _BATCH:
                    pass
            except Exception:
                log.exception("publishing views failed; will retry")
                await asyncio.sleep(1.0)

    async def publish_pending(self) -> int:
        """Publish up to one batch of pending views; return how many were published."""
        async with driver_connection(self.engine) as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return 0
            try:
                pending = await conn.fetch(
                    f"SELECT citizen_id, enqueued_at FROM {self.schema}.view_outbox ORDER BY enqueued_at LIMIT {_BATCH}"
                )
                if not pending:
                    return 0
                ids = [r["citizen_id"] for r in pending]
                views = await load_views(conn, ids, datetime.now(UTC).date(), self.schema)
                futures = [
                    await self.producer.send(
                        self.topic,
                        key=cid.encode(),
                        value=json.dumps(view, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(),
                    )
                    for cid, view in views.items()
                ]
                await asyncio.gather(*futures)
                # Only rows not re-enqueued meanwhile: a newer change keeps its row and is published next round.
                await conn.execute(
                    f"DELETE FROM {self.schema}.view_outbox o USING unnest($1::text[], $2::timestamptz[]) AS k(c, t) "
                    "WHERE o.citizen_id = k.c AND o.enqueued_at = k.t",
                    ids,
                    [r["enqueued_at"] for r in pending],
                )
                self.metrics.views_published.inc(len(views))
                return len(pending)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
