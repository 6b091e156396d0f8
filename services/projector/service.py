"""The projector's runtime: batch handler, rebalance listener, view publisher.

Kafka delivers; PostgreSQL decides. A batch's effects and its checkpoints commit in one transaction; on
assignment the consumer seeks to the stored checkpoints, so Kafka's own committed offsets only serve lag
monitoring. A batch that fails for its content has the records that cause it dead-lettered and the rest
applied (``BatchProjector.commit``); a batch that fails for an outage is rolled back and its partitions
rewound (``nack``) and retried, never skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine

from events import DEAD_LETTER_TOPIC
from services import telemetry
from services.db.engine import driver_connection
from services.dead_letters import Rejected, printable, publish_dead_letters
from services.projector.failures import describe
from services.projector.metrics import ProjectorMetrics
from services.projector.pipeline import BatchProjector, BatchResult, DeadLetter
from services.retry import DAEMON_RETRY

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer
    from faststream.kafka.message import KafkaMessage
    from opentelemetry.trace import TracerProvider

    from projections.resident.store import PostgresProjectionStore

log = logging.getLogger("renkou.projector")


class Projector:
    """Everything one projector process holds while it runs."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        store: PostgresProjectionStore,
        namespace: str,
        metrics: ProjectorMetrics,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.engine = engine
        self.producer = producer
        self.store = store
        self.namespace = namespace
        self.metrics = metrics
        self.pipeline = BatchProjector(store, namespace=namespace, publish_dead_letters=self._dead_letter)
        self.consumer: AIOKafkaConsumer | None = None
        self._failures = 0  # batches failed in a row (an outage): how long to wait before the next attempt

    async def _dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        await publish_dead_letters(
            self.producer,
            self.namespace + DEAD_LETTER_TOPIC,
            [
                Rejected(
                    d.record.key,
                    d.record.value,
                    d.reason,
                    list(d.record.headers or ()),
                    d.record.topic,
                    d.record.partition,
                    d.record.offset,
                )
                for d in letters
            ],
            rejected_by="projector",
        )
        for letter in letters:
            log.warning(
                "dead letter %s[%d]@%d: %s",
                letter.record.topic,
                letter.record.partition,
                letter.record.offset,
                printable(letter.reason, 500),
            )

    async def handle(self, message: KafkaMessage) -> None:
        """Apply one batch (FastStream hands it over with the manual ack policy)."""
        records: tuple[Any, ...] = (
            message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        )
        if not records:
            return
        started = time.perf_counter()
        started_ns = time.time_ns()
        try:
            async with driver_connection(self.engine) as conn:
                result = await self.pipeline.commit(conn, records)
        except Exception:
            self.metrics.batch_failures.inc()
            self._failures += 1
            wait_s = DAEMON_RETRY.wait_s(self._failures)
            log.exception(
                "batch of %d records failed; rolled back, rewinding and retrying in %.1f s", len(records), wait_s
            )
            await message.nack()
            await asyncio.sleep(wait_s)
            return
        self._failures = 0
        if result.failure is not None:
            self.metrics.isolated.inc(result.isolated)
            log.warning(
                "batch of %d records failed for its content (%s); %d record(s) dead-lettered after %d attempts, the "
                "rest applied",
                len(records),
                describe(result.failure),
                result.isolated,
                result.attempts,
            )
        consumer = self.consumer
        if consumer is not None:
            for (topic, partition), offset in result.resync.items():
                log.warning(
                    "%s[%d]: batch did not follow the checkpoint; seeking back to %d",
                    topic,
                    partition,
                    offset,
                )
                consumer.seek(TopicPartition(topic, partition), offset)
        await message.ack()  # Kafka's committed offsets: lag monitoring only
        if self.tracer_provider is not None:
            # Each applied event in its own trace (the department's POST), linked to this batch's span.
            dead = {(d.record.topic, d.record.partition, d.record.offset) for d in result.dead_letters}
            try:
                telemetry.record_applied(self.tracer_provider, records, started_ns, trace.get_current_span(), dead)
            except Exception:  # tracing must never cost the batch its bookkeeping
                log.exception("could not record the batch's spans")
        self._observe(records, result, time.perf_counter() - started)

    def _observe(self, records: Sequence[Any], result: BatchResult, seconds: float) -> None:
        m = self.metrics
        for department, count in result.applied_by_department.items():
            m.applied.labels(department).inc(count)
        m.duplicates.inc(result.duplicates)
        m.stale.inc(result.stale)
        m.dead_letters.inc(len(result.dead_letters))
        m.batch_size.observe(len(records))
        m.batch_seconds.observe(seconds)
        m.last_batch.set(datetime.now(UTC).timestamp())
        consumer = self.consumer
        if consumer is None:
            return
        for (topic, partition), offset in result.last_offsets.items():
            highwater = consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:
                m.lag.labels(topic, str(partition)).set(max(0, highwater - offset - 1))


class SeekToCheckpoints(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, position every partition at the checkpoint stored in PostgreSQL (0 when none).

    Built before the subscriber it serves (FastStream takes it as an argument); the composition root then
    hands it the subscriber, whose consumer exists once the broker started, and the running projector.
    """

    def __init__(self) -> None:
        self.projector: Projector | None = None
        self.subscriber: Any = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing to flush: a batch in flight either commits with its checkpoints or rolls back; a batch that
        # commits after the partition moved on is fenced by the checkpoint row lock.
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        projector = self.projector
        consumer = getattr(self.subscriber, "consumer", None)
        if projector is None or consumer is None:
            raise RuntimeError("partitions assigned before the projector started")
        projector.consumer = consumer
        if not assigned:
            return
        async with driver_connection(projector.engine) as conn:
            stored = await projector.store.read_checkpoints(conn, {tp.topic for tp in assigned})
        for tp in sorted(assigned):
            offset = stored.get((tp.topic, tp.partition), 0)
            consumer.seek(tp, offset)
        log.info("assigned %d partitions; positioned at stored checkpoints", len(assigned))
