"""Dead letters: list them, show one in full, and re-drive one once its cause is fixed.

A dead letter is identified by where the projector met it, ``TOPIC:PARTITION:OFFSET``. Re-driving publishes the
fixed record — the original value by default, or a corrected one — to the department topic its event belongs
to, keyed by citizen ID (acks=all), and marks the dead letter ``redriven_at``. The record keeps its
``event_id``: the projector applies one ``event_id`` once, so re-driving twice, or re-driving an event that
also arrived by another way, cannot apply it twice.

Order: a re-driven event is applied after the events that reached the log before it. Re-drive one resident's
dead letters in their original order.

A record too large to keep is dead-lettered by reference (``value_size`` set, no value): it stays in its topic at
the dead letter's coordinates; re-driving it needs the fixed record (``value``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from events import DEAD_LETTER_TOPIC, InvalidEvent, parse_event, topic_for
from projections.resident import tables
from projections.resident.batch import DeadLetterRow
from projections.resident.tables import named
from services.dead_letters import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from services.kafka.metadata import partitions_of
from services.operations.base import (
    BadInputError,
    NotFoundError,
    OperationError,
    database,
    kafka_consumer,
    kafka_producer,
)
from services.operations.schemas import LIVE
from services.settings import Settings

DEAD_LETTERS = named(tables.dead_letters, LIVE)

REDRIVEN_FROM = "renkou.dlq.redriven_from"

Coordinates = tuple[str, int, int]


def parse_coordinates(raw: str) -> Coordinates:
    """``TOPIC:PARTITION:OFFSET`` → its parts; topic names hold dots, never colons."""
    parts = raw.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise BadInputError(f"{raw!r} is not TOPIC:PARTITION:OFFSET (see `renkou dlq list`)")
    topic, partition, offset = parts
    try:
        p, o = int(partition), int(offset)
    except ValueError:
        raise BadInputError(f"{raw!r}: partition and offset must be whole numbers (TOPIC:PARTITION:OFFSET)") from None
    if p < 0 or o < 0:
        raise BadInputError(f"{raw!r}: partition and offset cannot be negative")
    return topic, p, o


def format_coordinates(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter(DeadLetterRow):
    """A dead-letter row of the live projection as an operator reads it: the row the projector wrote
    (``batch.DeadLetterRow``), when it was rejected, and when it was re-driven."""

    rejected_at: datetime = field(kw_only=True)
    redriven_at: datetime | None = field(kw_only=True)

    @property
    def coordinates(self) -> str:
        return format_coordinates(self.topic, self.partition, self.offset)

    @property
    def omitted(self) -> str | None:
        """What to say instead of the value when it was not kept, else ``None``."""
        if self.value_size is None:
            return None
        return f"omitted: {self.value_size:,} bytes, too large to keep; the record stays at {self.coordinates}"

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coordinates": self.coordinates,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "reason": self.reason,
            "rejected_at": self.rejected_at.isoformat(),
            "redriven_at": self.redriven_at.isoformat() if self.redriven_at else None,
        }
        if self.value_size is not None:
            out["value_size"] = self.value_size
        if full:
            out["key"] = _text(self.key)
            out["value"] = value_for_display(self.value)
            if self.omitted is not None:
                out["value_omitted"] = self.omitted
        return out


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def value_for_display(raw: bytes | None) -> Any:
    """The record value as JSON when it parses, else as text (``None`` for a tombstone)."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _row(r: asyncpg.Record) -> DeadLetter:
    return DeadLetter(
        r["topic"],
        r["kafka_partition"],
        r["kafka_offset"],
        r["reason"],
        None if r["record_key"] is None else bytes(r["record_key"]),
        None if r["record_value"] is None else bytes(r["record_value"]),
        r["event_id"],
        r["value_size"],
        rejected_at=r["rejected_at"],
        redriven_at=r["redriven_at"],
    )


_COLUMNS = (
    "topic, kafka_partition, kafka_offset, reason, record_key, record_value, event_id, rejected_at, redriven_at, "
    "value_size"
)


async def list_dead_letters(
    conn: asyncpg.Connection, *, pending_only: bool = False, limit: int = 50
) -> tuple[list[DeadLetter], int]:
    """The first ``limit`` dead letters (oldest first) and how many there are in all."""
    where = "WHERE redriven_at IS NULL" if pending_only else ""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {DEAD_LETTERS} {where} ORDER BY rejected_at, topic, kafka_partition, "
        "kafka_offset LIMIT $1",
        limit,
    )
    count = await conn.fetchval(f"SELECT count(*) FROM {DEAD_LETTERS} {where}")
    return [_row(r) for r in rows], int(count)


async def get_dead_letter(conn: asyncpg.Connection, coordinates: Coordinates) -> DeadLetter:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM {DEAD_LETTERS} WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3",
        *coordinates,
    )
    if row is None:
        raise NotFoundError(f"no dead letter at {format_coordinates(*coordinates)} (see `renkou dlq list`)")
    return _row(row)


async def dead_letter_headers(
    settings: Settings, coordinates: Coordinates, *, wait_s: float = 10.0
) -> list[tuple[str, bytes]] | None:
    """The headers of the dead-letter topic's record for ``coordinates`` (``None`` if not found in time)."""
    topic = settings.topic_namespace + DEAD_LETTER_TOPIC
    wanted = (coordinates[0].encode(), str(coordinates[1]).encode(), str(coordinates[2]).encode())
    async with kafka_consumer(settings) as consumer:
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            return None
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    headers = dict(record.headers)
                    found = (headers.get(SOURCE_TOPIC), headers.get(SOURCE_PARTITION), headers.get(SOURCE_OFFSET))
                    if found == wanted:
                        return list(record.headers)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    return None


@dataclass(frozen=True)
class Redriven:
    """Where a re-driven record landed."""

    dead_letter: str
    event_id: str
    topic: str
    partition: int
    offset: int


async def redrive(
    settings: Settings, coordinates: Coordinates, *, value: bytes | None = None, again: bool = False
) -> Redriven:
    """Publish the fixed record of the dead letter at ``coordinates`` to its department topic and mark it.

    ``value``: the corrected record (default: the original). It must pass ``parse_event`` and keep the dead
    letter's ``event_id``. Refuses a dead letter already re-driven unless ``again``, and an event whose
    ``event_id`` is already archived (applied, or taken by other content).
    """
    async with database(settings) as conn:
        letter = await get_dead_letter(conn, coordinates)
        if letter.redriven_at is not None and not again:
            raise OperationError(
                f"{letter.coordinates} was re-driven at {letter.redriven_at.isoformat()}; pass --again to publish "
                "it once more (its event_id is applied once at most)"
            )
        raw = letter.value if value is None else value
        if raw is None:
            what = f"no value kept ({letter.omitted})" if letter.omitted else "no value (a tombstone)"
            raise BadInputError(f"{letter.coordinates} has {what}; give the fixed record with --value-file")
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            source = "the original record" if value is None else "the fixed record"
            raise BadInputError(f"{source} is still not a valid event: {exc}") from None
        original_id = _uuid(letter.event_id)
        if original_id is not None and event.event_id != original_id:
            raise BadInputError(
                f"the fixed record has event_id {event.event_id}, the dead letter {original_id}: keep the event_id "
                "(it is what makes a re-drive apply once)"
            )
        archived = await conn.fetchrow(
            f"SELECT topic, kafka_partition, kafka_offset, body FROM {named(tables.event_archive)} WHERE event_id = $1",
            event.event_id,
        )
        if archived is not None:
            where = format_coordinates(archived["topic"], archived["kafka_partition"], archived["kafka_offset"])
            if _same(bytes(archived["body"]), event.canonical_bytes()):
                raise OperationError(
                    f"event {event.event_id} is already applied (archived from {where}); nothing to do"
                )
            raise OperationError(
                f"event_id {event.event_id} is already archived from {where} with other content: the projector would "
                "dead-letter this record again"
            )
        topic = settings.topic_namespace + topic_for(event.department)
        async with kafka_producer(settings) as producer:
            sent = await producer.send_and_wait(
                topic,
                value=raw,
                key=event.citizen_id.encode(),
                headers=[(REDRIVEN_FROM, letter.coordinates.encode())],
            )
        await conn.execute(
            f"UPDATE {DEAD_LETTERS} SET redriven_at = now() "
            "WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3",
            *coordinates,
        )
    return Redriven(letter.coordinates, str(event.event_id), sent.topic, sent.partition, sent.offset)


def _uuid(text: str | None) -> UUID | None:
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None


def _same(archived_body: bytes, canonical: bytes) -> bool:
    try:
        return parse_event(archived_body).canonical_bytes() == canonical
    except InvalidEvent:
        return False
