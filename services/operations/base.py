"""What every operator task shares: its errors, connections with clear failures, partitions and offsets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from events import department_topics
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.kafka.auth import OPERATOR, client_options, durable_producer
from services.kafka.metadata import refresh_metadata
from services.settings import Settings

Partition = tuple[str, int]
Positions = dict[Partition, int]
"""(topic, partition) → an offset: a checkpoint (the next offset to apply), a log end, a replay target."""

KAFKA_TIMEOUT_MS = 10_000


class OperationError(Exception):
    """An operator task could not do what was asked; ``str(error)`` is one line, ``code`` the exit code."""

    code = 1


class BadInputError(OperationError):
    """The arguments are wrong (malformed ID, time, coordinates, file)."""

    code = 2


class UnavailableError(OperationError):
    """Kafka or PostgreSQL cannot be reached."""

    code = 3


class NotFoundError(OperationError):
    """The thing named does not exist (resident, dead letter, schema, topic)."""

    code = 4


def dsn(settings: Settings, role: str = db_roles.OPERATOR) -> str:
    """The asyncpg DSN of the configured database, as ``role`` (the operator's; schema changes: the owner's)."""
    return asyncpg_dsn(db_roles.url_for(settings, role))


def _where(settings: Settings) -> str:
    return dsn(settings).rsplit("@", 1)[-1]


async def connect(
    settings: Settings, *, application_name: str = "renkou-operator", role: str = db_roles.OPERATOR
) -> asyncpg.Connection:
    """A connection to the configured database as ``role``, or ``UnavailableError`` saying where it looked."""
    try:
        return await asyncpg.connect(
            dsn(settings, role),
            timeout=5,
            server_settings={"application_name": application_name, "timezone": "UTC"},
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise UnavailableError(
            f"cannot reach PostgreSQL at {_where(settings)} ({exc.__class__.__name__}); is the stack up? (make up)"
        ) from exc


@asynccontextmanager
async def database(
    settings: Settings, *, application_name: str = "renkou-operator", role: str = db_roles.OPERATOR
) -> AsyncIterator[asyncpg.Connection]:
    """``connect`` as a context manager."""
    conn = await connect(settings, application_name=application_name, role=role)
    try:
        yield conn
    finally:
        await conn.close()


def quiet_kafka_logs() -> None:
    """aiokafka logs every failed connection attempt; the CLI says it once, in its own words."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@asynccontextmanager
async def kafka_consumer(settings: Settings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer without a group (nothing committed, positions set by the caller)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, OPERATOR),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=KAFKA_TIMEOUT_MS,
        **options,
    )
    async with _started(consumer, settings):
        yield consumer


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started idempotent producer that waits for every in-sync replica (acks=all)."""
    producer = durable_producer(settings, OPERATOR, request_timeout_ms=KAFKA_TIMEOUT_MS, client_id="renkou-operator")
    async with _started(producer, settings):
        yield producer


@asynccontextmanager
async def _started(client: AIOKafkaConsumer | AIOKafkaProducer, settings: Settings) -> AsyncIterator[None]:
    """``client`` started, stopped on the way out; ``UnavailableError`` if Kafka cannot be reached."""
    try:
        await client.start()
    except KafkaError as exc:
        with contextlib.suppress(Exception):
            await client.stop()
        raise UnavailableError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc.__class__.__name__}); is the stack up? (make up)"
        ) from exc
    try:
        yield
    finally:
        await client.stop()


async def department_partitions(consumer: AIOKafkaConsumer, namespace: str) -> list[TopicPartition]:
    """Every partition of the four department topics; ``NotFoundError`` naming a topic that does not exist."""
    await refresh_metadata(consumer)
    found: list[TopicPartition] = []
    for topic in department_topics(namespace):
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise NotFoundError(
                f"topic {topic} does not exist (is RENKOU_TOPIC_NAMESPACE right? `renkou infra up` creates it)"
            )
        found.extend(TopicPartition(topic, p) for p in sorted(partitions))
    return found


async def log_ends(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> Positions:
    """The offset after the last record of each partition, now."""
    ends = await consumer.end_offsets(list(partitions))
    return {(tp.topic, tp.partition): int(off) for tp, off in ends.items()}


async def log_starts(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> Positions:
    """The first offset still held by each partition (0 unless retention deleted records)."""
    starts = await consumer.beginning_offsets(list(partitions))
    return {(tp.topic, tp.partition): int(off) for tp, off in starts.items()}


def total(positions: Mapping[Partition, int]) -> int:
    """The sum of the offsets: events behind a set of checkpoints (offsets count from 0 on every partition)."""
    return sum(positions.values())


def short_hex(value: bytes | None, length: int = 12) -> str:
    """A hash as the first ``length`` hex digits and an ellipsis (``-`` for none)."""
    if value is None:
        return "-"
    text = value.hex()
    return text if len(text) <= length else text[:length] + "…"


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
