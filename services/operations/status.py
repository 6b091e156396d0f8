"""Where the projection stands: checkpoint, log end and lag per partition, dead letters, the last batch.

The checkpoints in PostgreSQL are the truth (the projector resumes from them); the consumer group's committed
offsets are shown beside them because that is what Kafka's own tools report as the group's lag.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from events import department_topics
from projections.resident import tables
from projections.resident.reads import PROJECTION, read_checkpoints
from projections.resident.tables import named
from services.kafka.auth import OPERATOR, client_options
from services.operations.base import KAFKA_TIMEOUT_MS, database, department_partitions, kafka_consumer, log_ends
from services.operations.schemas import LIVE, SchemaInfo, projection_schemas
from services.projector.app import GROUP_ID
from services.settings import Settings


@dataclass(frozen=True)
class PartitionStatus:
    projection: str
    topic: str
    partition: int
    checkpoint: int
    log_end: int
    group_committed: int | None

    @property
    def lag(self) -> int:
        return max(0, self.log_end - self.checkpoint)


@dataclass(frozen=True)
class SchemaStatus:
    name: str
    role: str
    events: int  # the sum of its checkpoints
    note: dict[str, Any]


@dataclass
class Status:
    """Everything ``renkou status`` shows."""

    partitions: list[PartitionStatus] = field(default_factory=list)
    dead_letters: int = 0
    dead_letters_pending: int = 0
    last_batch_at: datetime | None = None
    group_id: str = ""
    schemas: list[SchemaStatus] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "projection": PROJECTION,
            "lag": self.lag,
            "partitions": [
                {
                    "projection": p.projection,
                    "topic": p.topic,
                    "partition": p.partition,
                    "checkpoint": p.checkpoint,
                    "log_end": p.log_end,
                    "lag": p.lag,
                    "group_committed": p.group_committed,
                }
                for p in self.partitions
            ],
            "dead_letters": {"total": self.dead_letters, "pending": self.dead_letters_pending},
            "last_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
            "consumer_group": self.group_id,
            "schemas": [{"name": s.name, "role": s.role, "events": s.events, "note": s.note} for s in self.schemas],
        }


async def group_offsets(settings: Settings, group_id: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets (empty when the group has committed nothing)."""
    admin = AIOKafkaAdminClient(**client_options(settings, OPERATOR), request_timeout_ms=KAFKA_TIMEOUT_MS)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(group_id)
    except KafkaError:
        return {}  # lag monitoring only: a group that never committed is not an error
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return {(tp.topic, tp.partition): int(meta.offset) for tp, meta in offsets.items() if meta.offset >= 0}


async def status(settings: Settings) -> Status:
    """Read the live projection's progress and health from PostgreSQL and Kafka."""
    topics = department_topics(settings.topic_namespace)
    async with kafka_consumer(settings) as consumer:
        partitions = await department_partitions(consumer, settings.topic_namespace)
        ends = await log_ends(consumer, partitions)
    result = Status(group_id=settings.topic_namespace + GROUP_ID)
    committed = await group_offsets(settings, result.group_id)
    async with database(settings) as conn:
        checkpoints = await read_checkpoints(conn, LIVE, topics)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            result.partitions.append(
                PartitionStatus(
                    PROJECTION, tp.topic, tp.partition, checkpoints.get(key, 0), ends[key], committed.get(key)
                )
            )
        row = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE redriven_at IS NULL) AS pending "
            f"FROM {named(tables.dead_letters)}"
        )
        assert row is not None
        result.dead_letters, result.dead_letters_pending = row["total"], row["pending"]
        result.last_batch_at = await conn.fetchval(
            f"SELECT max(updated_at) FROM {named(tables.checkpoints)} WHERE projection = $1", PROJECTION
        )
        for info in await projection_schemas(conn):
            result.schemas.append(await _schema_status(conn, info, topics))
    return result


async def _schema_status(conn: Any, info: SchemaInfo, topics: list[str]) -> SchemaStatus:
    events = sum((await read_checkpoints(conn, info.name, topics)).values())
    return SchemaStatus(info.name, info.role, events, info.note)
