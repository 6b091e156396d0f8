"""Publishing rejected records to ``population.dead_letter.v1``: untouched, with the reason in headers.

Shared by the gateway and the projector, so that every dead letter looks the same whoever rejected it.

A record too large to be copied whole onto the dead-letter topic (key, value and headers over ``COPY_LIMIT``,
half of Kafka's default 1 MiB request) is dead-lettered *by reference*: its coordinates (``source_*`` headers),
its reason, and the header ``renkou.dlq.omitted`` naming what was left out (the value, and the key and the
record's own headers if they alone are too large) with ``renkou.dlq.value_size``. The record itself stays in
its topic, which keeps everything forever. Without that, one oversized record would fail the dead-letter
publish, and the projector would retry the batch that holds it forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from aiokafka import AIOKafkaProducer

REASON = "renkou.dlq.reason"
SOURCE_TOPIC = "renkou.dlq.source_topic"
SOURCE_PARTITION = "renkou.dlq.source_partition"
SOURCE_OFFSET = "renkou.dlq.source_offset"
REJECTED_BY = "renkou.dlq.rejected_by"
REJECTED_AT = "renkou.dlq.rejected_at"
OMITTED = "renkou.dlq.omitted"
VALUE_SIZE = "renkou.dlq.value_size"
_OURS = {REASON, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, REJECTED_BY, REJECTED_AT, OMITTED, VALUE_SIZE}

COPY_LIMIT: Final = 512 * 1024
"""The most bytes of a record (key, value and headers) a dead letter copies; larger ones go by reference."""

MAX_REASON_CHARS: Final = 4000
"""A reason longer than this (an event with thousands of unknown fields, say) is shortened."""


@dataclass(frozen=True)
class Rejected:
    """A record to dead-letter; ``topic``/``partition``/``offset`` say where it came from (None if from HTTP).

    ``omitted`` names what a by-reference letter leaves out (empty: the record is copied whole) and
    ``value_size`` is the size of the record's value in bytes (``by_reference`` sets both).
    """

    key: bytes | None
    value: bytes | None
    reason: str
    headers: Sequence[tuple[str, bytes]] = ()
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    omitted: tuple[str, ...] = ()
    value_size: int | None = None


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> int:
    """Bytes of a record's key, value and headers (what counts against Kafka's size limits)."""
    return len(key or b"") + len(value or b"") + sum(len(k.encode()) + len(v or b"") for k, v in headers)


def by_reference(rejected: Rejected, limit: int = COPY_LIMIT) -> Rejected:
    """``rejected`` as it can be dead-lettered: unchanged if it fits in ``limit`` bytes, else without its value
    (and without its key and own headers too if those alone do not fit)."""
    own = [(k, v) for k, v in rejected.headers if k not in _OURS]
    if rejected.omitted or record_size(rejected.key, rejected.value, own) <= limit:
        return rejected
    size = len(rejected.value or b"")
    if record_size(rejected.key, None, own) <= limit // 2:
        return replace(rejected, value=None, headers=own, omitted=("value",), value_size=size)
    return replace(rejected, key=None, value=None, headers=(), omitted=("value", "key", "headers"), value_size=size)


def printable(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` safe for a header, a log line and a PostgreSQL ``text`` column: control characters and lone
    surrogates escaped (PostgreSQL refuses NUL, UTF-8 refuses surrogates), at most ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[: limit - 40]}… ({len(text) - limit + 40:,} more characters)"


def dead_letter_headers(rejected: Rejected, rejected_by: str) -> list[tuple[str, bytes]]:
    """The record's own headers (minus any earlier dead-letter headers), then ours."""
    headers = [(k, v) for k, v in rejected.headers if k not in _OURS]
    headers.append((REASON, printable(rejected.reason).encode()))
    if rejected.topic is not None:
        headers.append((SOURCE_TOPIC, rejected.topic.encode()))
        headers.append((SOURCE_PARTITION, str(rejected.partition).encode()))
        headers.append((SOURCE_OFFSET, str(rejected.offset).encode()))
    if rejected.omitted:
        headers.append((OMITTED, ",".join(rejected.omitted).encode()))
        headers.append((VALUE_SIZE, str(rejected.value_size).encode()))
    headers.append((REJECTED_BY, rejected_by.encode()))
    headers.append((REJECTED_AT, datetime.now(UTC).isoformat().encode()))
    return headers


async def publish_dead_letters(
    producer: AIOKafkaProducer, topic: str, rejected: Sequence[Rejected], *, rejected_by: str
) -> None:
    """Send every rejected record and wait until Kafka acknowledged all of them (oversized ones by reference)."""
    letters = [by_reference(r) for r in rejected]
    futures = [
        await producer.send(topic, value=r.value, key=r.key, headers=dead_letter_headers(r, rejected_by))
        for r in letters
    ]
    await asyncio.gather(*futures)
