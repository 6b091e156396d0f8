"""Anchors on Kafka: ``population.audit_anchor.v1`` (with the namespace prefix, like every renkou topic).

One series of anchors, so one partition in production; readers take the highest ``seq`` over every partition
(test namespaces create every topic with the same partition count).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events import ANCHOR_TOPIC
from services.anchor.record import SignedAnchor
from services.kafka.metadata import partitions_of

ANCHOR_KEY = b"resident_view"  # one key: every anchor of the projection lands on one partition, in order


class AnchorTopicError(Exception):
    """The anchor topic does not exist or could not be read."""


def anchor_topic(namespace: str) -> str:
    return namespace + ANCHOR_TOPIC


@dataclass(frozen=True)
class Published:
    """An anchor record where it sits in the log."""

    topic: str
    partition: int
    offset: int
    value: bytes

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


async def publish_anchor(producer: AIOKafkaProducer, topic: str, signed: SignedAnchor) -> Published:
    """Send one anchor and wait until Kafka acknowledged it (the producer's acks setting: ``all`` in renkou)."""
    value = signed.to_bytes()
    meta = await producer.send_and_wait(topic, value=value, key=ANCHOR_KEY)
    return Published(topic, meta.partition, meta.offset, value)


async def read_anchors(
    consumer: AIOKafkaConsumer, topic: str, *, last: int | None = 50, wait_s: float = 20.0
) -> list[Published]:
    """The last ``last`` records of every partition of ``topic`` (all of them when ``None``), in log order.

    ``consumer`` is started and belongs to no group; its assignment is replaced.
    """
    tps = await partitions_of(consumer, topic)
    if not tps:
        raise AnchorTopicError(f"topic {topic} does not exist (`renkou infra up` creates it)")
    consumer.assign(tps)
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    remaining: set[TopicPartition] = set()
    for tp in tps:
        first = starts[tp] if last is None else max(starts[tp], ends[tp] - last)
        if first < ends[tp]:
            consumer.seek(tp, first)
            remaining.add(tp)
    found: list[Published] = []
    deadline = asyncio.get_running_loop().time() + wait_s
    while remaining:
        if asyncio.get_running_loop().time() > deadline:
            raise AnchorTopicError(f"could not read {topic} to its end within {wait_s:.0f} s")
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, records in batches.items():
            for r in records:
                if r.offset < ends[tp] and r.value is not None:
                    found.append(Published(topic, tp.partition, r.offset, r.value))
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    consumer.unsubscribe()  # the client goes back to tracking every topic's metadata, for the caller's next use
    found.sort(key=lambda p: (p.partition, p.offset))
    return found
