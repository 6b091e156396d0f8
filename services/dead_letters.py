"""Publishing rejected records to ``population.dead_letter.v1``: untouched, with the reason in headers.

Shared by the gateway and the projector, so that every dead letter looks the same whoever rejected it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

DEAD_LETTER_TOPIC = "population.dead_letter.v1"
REASON = "renkou.dlq.reason"
SOURCE_TOPIC = "renkou.dlq.source_topic"
SOURCE_PARTITION = "renkou.dlq.source_partition"
SOURCE_OFFSET = "renkou.dlq.source_offset"
REJECTED_BY = "renkou.dlq.rejected_by"
REJECTED_AT = "renkou.dlq.rejected_at"
_OURS = {REASON, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, REJECTED_BY, REJECTED_AT}


@dataclass(frozen=True)
class Rejected:
    """A record to dead-letter; ``topic``/``partition``/``offset`` say where it came from (None if from HTTP)."""

    key: bytes | None
    value: bytes | None
    reason: str
    headers: Sequence[tuple[str, bytes]] = ()
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


def dead_letter_headers(rejected: Rejected, rejected_by: str) -> list[tuple[str, bytes]]:
    """The record's own headers (minus any earlier dead-letter headers), then ours."""
    headers = [(k, v) for k, v in rejected.headers if k not in _OURS]
    headers.append((REASON, rejected.reason.encode()))
    if rejected.topic is not None:
        headers.append((SOURCE_TOPIC, rejected.topic.encode()))
        headers.append((SOURCE_PARTITION, str(rejected.partition).encode()))
        headers.append((SOURCE_OFFSET, str(rejected.offset).encode()))
    headers.append((REJECTED_BY, rejected_by.encode()))
    headers.append((REJECTED_AT, datetime.now(UTC).isoformat().encode()))
    return headers


async def publish_dead_letters(
    producer: AIOKafkaProducer, topic: str, rejected: Sequence[Rejected], *, rejected_by: str
) -> None:
    """Send every rejected record and wait until Kafka acknowledged all of them."""
    futures = [
        await producer.send(topic, value=r.value, key=r.key, headers=dead_letter_headers(r, rejected_by))
        for r in rejected
    ]
    await asyncio.gather(*futures)
