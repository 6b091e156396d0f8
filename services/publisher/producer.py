"""``Publisher``: events to the department topics with the backbone's guarantees.

Idempotent producer, ``acks=all``, keyed by citizen ID, the event's canonical bytes as the value; a publish call
returns only once Kafka acknowledged every record, with the (topic, partition, offset) of each. Records are
packed into one Kafka batch per partition (``send_batch``) instead of one future per record: several times less
Python per event, which is what lets the gateway keep up with whole batches of events.

``publish``/``publish_many``/``deliver`` ride out a Kafka outage: what Kafka did not acknowledge because it was
unavailable is sent again under the backbone's retry policy (``services.retry``; 5 minutes by default), and
only then is ``PublishError`` raised. ``send_records`` (the gateway's, which answers 503 instead of waiting) tries
once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from events import Event, topic_for
from services import telemetry
from services.kafka.auth import DURABLE, KafkaCredentials, bootstrap_servers
from services.retry import GaveUpError, RetryPolicy

if TYPE_CHECKING:
    from events import Payload

__all__ = ["PublishError", "Publisher", "Receipt", "Record"]

Record = tuple[str, bytes, bytes]
"""``(topic, key, value)`` of one Kafka record, the topic name in full (namespace included)."""


@dataclass(frozen=True)
class Receipt:
    """Where Kafka stored an acknowledged event."""

    event_id: str
    topic: str
    partition: int
    offset: int


class PublishError(RuntimeError):
    """Kafka did not acknowledge (unreachable, timed out, refused): the records may or may not be in the log.

    Publishing the same events again is always safe: every consumer applies one ``event_id`` once. Its
    ``__cause__`` is Kafka's (or the network's) error, so that ``services.outages.is_outage`` tells an outage,
    worth retrying, from a refusal (a record too large).
    """


def _publish_error(message: str, cause: BaseException) -> PublishError:
    error = PublishError(message)
    error.__cause__ = cause
    return error


class Publisher:
    """An idempotent, ``acks=all`` Kafka producer for department events.

    ::

        credentials = KafkaCredentials("demo-health", password)  # the department's SCRAM principal (§10)
        async with Publisher("127.0.0.1:9092", credentials=credentials) as publisher:
            receipt = await publisher.publish(event)  # returns once Kafka acknowledged it

    ``namespace`` is prefixed to every topic name (empty in production, a unique prefix in tests). One
    ``Publisher`` may be shared by many concurrent tasks; within one call, records of one partition keep their
    order, so a citizen's events published in one call arrive in the order given.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        namespace: str = "",
        client_id: str = "renkou-publisher",
        linger_ms: int = 2,
        request_timeout_ms: int = 15_000,
        max_batch_bytes: int = 512 * 1024,
        credentials: KafkaCredentials | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """``retry``: how long ``publish``/``publish_many``/``deliver`` ride out an outage (``RetryPolicy()``:
        up to 5 minutes, backoff with jitter)."""
        self.retry = retry or RetryPolicy()
        self.bootstrap_servers = bootstrap_servers
        self.credentials = credentials
        self.namespace = namespace
        self.client_id = client_id
        self.linger_ms = linger_ms
        self.request_timeout_ms = request_timeout_ms
        self.max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._partitioner = DefaultPartitioner()
        self._partition_cache: dict[tuple[bytes, int], int] = {}

    # --- life cycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to Kafka (idempotently); raises ``PublishError`` if no broker answers."""
        async with self._starting:
            if self._producer is not None:
                return
            security = self.credentials.aiokafka_options() if self.credentials is not None else {}
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_servers(self.bootstrap_servers),
                **security,
                client_id=self.client_id,
                **DURABLE,
                linger_ms=self.linger_ms,
                request_timeout_ms=self.request_timeout_ms,
                max_batch_size=self.max_batch_bytes,
                max_request_size=max(self.max_batch_bytes, 1_048_576),
            )
            try:
                await asyncio.wait_for(producer.start(), self.request_timeout_ms / 1000)
            except (KafkaError, OSError, TimeoutError) as exc:  # a refusal too: is_outage(cause) tells them apart
                await _quietly_stop(producer)
                raise PublishError(f"Kafka at {self.bootstrap_servers} is unavailable ({_describe(exc)})") from exc
            self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        """The underlying aiokafka producer (for records this class does not cover, such as dead letters)."""
        if self._producer is None:
            raise PublishError("the publisher is not started")
        return self._producer

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- events -----------------------------------------------------------------------------------------------
    def topic(self, event: Event[Payload]) -> str:
        """The full topic name ``event`` belongs on (namespace included)."""
        return self.namespace + topic_for(event.department)

    async def publish(self, event: Event[Payload]) -> Receipt:
        """Publish one validated event and wait for Kafka's acknowledgement."""
        return (await self.publish_many([event]))[0]

    async def publish_many(self, events: Sequence[Event[Payload]]) -> list[Receipt]:
        """Publish validated events (in order per citizen) and wait until Kafka acknowledged all of them, riding
        out an outage under ``self.retry``.

        Raises ``PublishError`` if any was not acknowledged in the end (those that were stay published;
        publishing all of them again is safe).
        """
        results = await self.deliver([(self.topic(e), e.key, e.canonical_bytes()) for e in events])
        return [Receipt(str(e.event_id), *where) for e, where in zip(events, results, strict=True)]

    async def deliver(self, records: Sequence[Record]) -> list[tuple[str, int, int]]:
        """``send_records`` until Kafka acknowledged every record: what it did not take because it was
        unavailable is sent again (in order: of each partition only a suffix is ever missing) under
        ``self.retry``. Raises ``PublishError`` for a refusal, or once the policy gives up (the cause says so)."""
        acknowledged: list[tuple[str, int, int] | None] = [None] * len(records)
        pending = list(range(len(records)))

        async def attempt() -> None:
            nonlocal pending
            outcomes = await self.send_records([records[i] for i in pending])
            failed = [i for i, outcome in zip(pending, outcomes, strict=True) if isinstance(outcome, PublishError)]
            for i, outcome in zip(pending, outcomes, strict=True):
                if not isinstance(outcome, PublishError):
                    acknowledged[i] = outcome
            first = next((o for o in outcomes if isinstance(o, PublishError)), None)
            pending = failed
            if first is not None:
                raise first

        what = f"publishing {len(records)} records to Kafka at {self.bootstrap_servers}"
        try:
            await self.retry.retrying(what)(attempt)
        except GaveUpError as exc:
            raise PublishError(f"Kafka at {self.bootstrap_servers} is unavailable ({exc})") from exc
        return [where for where in acknowledged if where is not None]

    # --- records ----------------------------------------------------------------------------------------------
    async def send_records(self, records: Sequence[Record]) -> list[tuple[str, int, int] | PublishError]:
        """Send raw records and wait for every acknowledgement; per record ``(topic, partition, offset)`` or the
        ``PublishError`` that kept it from being acknowledged. Records of one partition keep their order.

        The caller is responsible for the records: the value should be an event's canonical bytes, the key its
        citizen ID (the partitioner is Kafka's default murmur2 of the key, as every client computes it).
        """
        if not records:
            return []
        try:
            await self.start()
            producer = self._producer
            assert producer is not None
            groups = await self._group(producer, records)
        except PublishError as exc:
            return [exc] * len(records)
        except (KafkaError, OSError, TimeoutError) as exc:
            error = _publish_error(f"Kafka at {self.bootstrap_servers} is unavailable ({_describe(exc)})", exc)
            return [error] * len(records)

        results: list[tuple[str, int, int] | PublishError] = [PublishError("not sent")] * len(records)
        headers = telemetry.inject()  # the caller's trace (a gateway request), for the projector to continue
        await asyncio.gather(
            *(
                self._send_partition(producer, records, topic, partition, indexes, results, headers)
                for (topic, partition), indexes in groups.items()
            )
        )
        return results

    async def _send_partition(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[Record],
        topic: str,
        partition: int,
        indexes: list[int],
        results: list[tuple[str, int, int] | PublishError],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """One partition's records, batch after batch: a batch is sent only once the one before it was
        acknowledged, so what Kafka acknowledged of a partition is always a prefix of what was asked for — a
        failure never leaves a later event of a citizen in the log without the earlier ones."""
        chunks = list(self._batches(producer, records, indexes, headers))
        for n, (batch, members) in enumerate(chunks):
            try:
                future = await asyncio.wait_for(
                    producer.send_batch(batch, topic, partition=partition), self.request_timeout_ms / 1000
                )
                metadata = (await self._settle([future]))[0]
                if isinstance(metadata, BaseException):
                    raise metadata
            except (KafkaError, OSError, TimeoutError, RuntimeError) as exc:
                error = _publish_error(f"Kafka did not acknowledge {topic}[{partition}] ({_describe(exc)})", exc)
                for _, rest in chunks[n:]:
                    for i in rest:
                        results[i] = error
                return
            base = int(metadata.offset)
            for k, i in enumerate(members):
                results[i] = (topic, partition, base + k)

    async def _settle(self, futures: list[asyncio.Future[Any]]) -> list[Any]:
        """Every future's result or exception; those not done within the request timeout count as failed."""
        wait_s = self.request_timeout_ms / 1000 + 5
        done, _ = await asyncio.wait(futures, timeout=wait_s)
        outcomes: list[Any] = []
        for future in futures:
            if future in done and not future.cancelled():
                outcomes.append(future.exception() or future.result())
            elif future in done:
                outcomes.append(RuntimeError("the send was cancelled"))
            else:
                outcomes.append(TimeoutError(f"no acknowledgement within {wait_s:.0f}s"))
        return outcomes

    async def _group(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> dict[tuple[str, int], list[int]]:
        """Record indexes by (topic, partition), each list in the given order."""
        partitions: dict[str, list[int]] = {}
        for topic in {r[0] for r in records}:
            found = await asyncio.wait_for(producer.partitions_for(topic), self.request_timeout_ms / 1000)
            partitions[topic] = sorted(found)
        groups: dict[tuple[str, int], list[int]] = {}
        cache = self._partition_cache
        if len(cache) > 200_000:
            cache.clear()
        for i, (topic, key, _) in enumerate(records):
            available = partitions[topic]
            # murmur2 is pure Python in aiokafka; a citizen's many events hash the same key over and over.
            slot = (key, len(available))
            partition = cache.get(slot)
            if partition is None:
                partition = cache[slot] = self._partitioner(key, available, available)
            groups.setdefault((topic, partition), []).append(i)
        return groups

    def _batches(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[Record],
        indexes: Iterable[int],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Iterable[tuple[Any, list[int]]]:
        """Kafka record batches of at most ``max_batch_bytes``, in order, each record with ``headers``."""
        batch = producer.create_batch()
        members: list[int] = []
        for i in indexes:
            _, key, value = records[i]
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                yield batch, members
                batch, members = producer.create_batch(), []
                # A record larger than a whole batch still goes alone in one (Kafka judges its size).
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            members.append(i)
        if members:
            yield batch, members


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    # It never started: there is nothing to flush, and its own error says nothing new.
    with contextlib.suppress(Exception):
        await producer.stop()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
