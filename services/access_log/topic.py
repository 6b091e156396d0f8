"""Reads' access-log entries through Kafka, so that the query API can read the view from a standby (CONTRACT §13).

With ``RENKOU_ACCESS_LOG=kafka`` no read writes to PostgreSQL. Each entry of a read is appended to
``population.access_log.v1`` (``acks=all``, idempotent; three replicas and ``min.insync.replicas=2`` on a cluster)
and the read is answered only once the broker acknowledged every entry of it (``TopicAccessLog``) — the same
promise as the in-database log: nothing of a read leaves the service unless its record is durable. The grant is
re-checked on the reading connection first (``QueryApiContext``); a revocation reaches a synchronous standby
before ``revoke_grant`` returns (``remote_apply``).

``AccessLogRelay``, a consumer group of the query API processes, then chains the entries into ``access_log`` on the
primary with ``renkou_access_log_append`` — the same function, the same canonical bytes and the same hash chain as
the in-database path, so the citizen's log (§11) and the anchors (§10) are unchanged. A record's key is its
citizen ID (one citizen's entries keep their order in one partition) and its value is exactly the entry's
canonical body. Each partition's batch commits with the partition's next offset (``access_log_offsets``, migration
0020) and skips what is below the offset it finds there, so a batch delivered twice is chained once. A record
that is not an entry (not canonical, its key not its citizen, a field PostgreSQL refuses) goes to the dead
letters with its reason, and the rest moves on; anything else that fails is retried for as long as the relay
runs. Offsets that left the topic before the relay reached them are counted as lost (``RelayBatch.gap``).

How long before a citizen sees an entry: a fetch waits up to 100 ms for more (``access_log_consumer``), then the
batch commits; ``make bench STANDBY=1`` measures the delay (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from tenacity import AsyncRetrying

from events.citizen_id import normalize_citizen_id
from projections.resident.tables import named
from services.access_log.database import (
    APPEND,
    AccessEntry,
    AccessLogUnavailableError,
    EntryGroup,
    append_arguments,
    canonical_body,
)
from services.db import service_tables
from services.dead_letters import Rejected, publish_dead_letters
from services.http.readiness import kafka_metadata
from services.retry import DAEMON_RETRY, RetryPolicy, any_error

__all__ = [
    "POLL_MS",
    "AccessLogRelay",
    "RelayBatch",
    "TopicAccessLog",
    "apply_batch",
    "entry_of",
]

_OFFSETS: Final = named(service_tables.access_log_offsets)

log = logging.getLogger("renkou.access_log_relay")

POLL_MS: Final = 100
"""How long the relay waits for more records before chaining what it has."""

REJECTED_BY: Final = "query-api access-log relay"

LISTENER_RETRY: Final = RetryPolicy(deadline_s=30.0, max_wait_s=5.0)
"""Reading the stored offsets when partitions are assigned (the group waits meanwhile)."""


_RECORD_ERRORS: Final = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,  # e.g. a value too large for an index row
)
"""What PostgreSQL says about one record's data (as opposed to an outage or a privilege: those are retried)."""

MAX_RECORDS: Final = 2000
"""The most records of one poll (one transaction per partition of it)."""


class TopicAccessLog:
    """Appends reads' entries to the access-log topic; a read is answered once Kafka acknowledged all of its own.

    The producer is made by ``factory`` (``acks=all``, idempotent) and started on first use if ``start`` could not
    (Kafka down when the API started: reads answer 503 until it is back, and the API never needs a restart)."""

    checks_grants: Final = False
    """The grant is not re-checked by appending (it is on the PostgreSQL path): the caller checks it first."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer], topic: str, *, timeout: float) -> None:
        self.factory = factory
        self.topic = topic
        self.timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Connect now if Kafka answers; if not, say so and connect on first use."""
        try:
            await asyncio.wait_for(self._connected(), self.timeout)
        except Exception as exc:
            log.warning(
                "access-log topic: Kafka not reachable yet (%s: %s); reads answer 503 until it is",
                type(exc).__name__,
                exc,
            )

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = self.factory()
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def ready(self) -> None:
        """The readiness check (``/readyz``): connected, and a broker answers a metadata request."""
        producer = await self._connected()
        await kafka_metadata(producer.client)()

    async def append(self, entry: AccessEntry, citizen_ids: Sequence[str]) -> None:
        """Append ``entry`` for each of ``citizen_ids``; return when Kafka acknowledged every one."""
        await self.append_groups([(entry, citizen_ids)])

    async def append_groups(self, groups: Sequence[EntryGroup]) -> None:
        """Append each group's entry for each of its citizens (once per citizen); return when all are acknowledged.

        Raises ``AccessLogUnavailableError`` when any is not acknowledged within ``timeout`` seconds or Kafka
        refuses it: the read must not be answered (entries already appended stay: they say it was attempted)."""
        try:
            await asyncio.wait_for(self._send(groups), self.timeout)
        except TimeoutError:
            raise AccessLogUnavailableError(f"Kafka did not acknowledge within {self.timeout:.1f}s") from None
        except Exception as exc:
            raise AccessLogUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    async def _send(self, groups: Sequence[EntryGroup]) -> None:
        producer = await self._connected()
        seen: set[str] = set()
        futures = []
        for entry, citizen_ids in groups:
            for cid in citizen_ids:
                if cid not in seen:
                    seen.add(cid)
                    futures.append(await producer.send(self.topic, canonical_body(entry, cid), key=cid.encode()))
        await asyncio.gather(*futures)


def entry_of(key: bytes | None, value: bytes | None) -> tuple[AccessEntry, str]:
    """The entry and citizen of one access-log record; ``ValueError`` naming what is wrong if it is not one."""
    if value is None:
        raise ValueError("the record has no value")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the value is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("the value is not a JSON object")
    texts = ("citizen_id", "request_id", "consumer", "purpose", "endpoint", "accessed_at")
    wrong = [name for name in texts if not isinstance(document.get(name), str)]
    sections = document.get("sections")
    if not isinstance(sections, list) or not all(isinstance(section, str) for section in sections):
        wrong.append("sections")
        sections = []
    if wrong:
        raise ValueError(f"not an access-log entry: {', '.join(wrong)} missing or of the wrong type")
    citizen_id = document["citizen_id"]
    try:
        if normalize_citizen_id(citizen_id) != citizen_id:
            raise ValueError("citizen_id is not in its canonical form")
        accessed_at = datetime.fromisoformat(document["accessed_at"])
        if accessed_at.tzinfo is None:
            raise ValueError("accessed_at does not carry its offset")
        entry = AccessEntry(
            request_id=UUID(document["request_id"]),
            consumer=document["consumer"],
            purpose=document["purpose"],
            sections=tuple(sections),
            endpoint=document["endpoint"],
            accessed_at=accessed_at,
        )
        canonical = canonical_body(entry, citizen_id)
    except Exception as exc:  # whatever the fields make fail, the record is not an entry, never a stalled relay
        raise ValueError(f"not an access-log entry ({type(exc).__name__}: {exc})") from None
    if canonical != value:
        raise ValueError("the value is not the entry's canonical body (CONTRACT §10: the bytes the chain hashes)")
    if key != citizen_id.encode():
        raise ValueError("the record's key is not the citizen ID its entry is about")
    return entry, citizen_id


@dataclass(frozen=True, slots=True)
class RelayBatch:
    """What ``apply_batch`` did with one partition's records."""

    chained: int
    """Entries appended to their citizens' chains."""
    skipped: int
    """Records below the stored offset: chained by an earlier delivery."""
    rejected: list[Rejected]
    """Records that are not entries, to dead-letter (their offsets are passed all the same)."""
    gap: int = 0
    """Offsets missing between the stored one and the first record applied: records that left the topic before
    the relay reached them (retention), or a recreated topic. Entries lost to the chains: an alarm."""
    next_offset: int = 0
    """The partition's next offset, stored with the batch."""


async def apply_batch(
    conn: asyncpg.Connection,
    topic: str,
    partition: int,
    records: Sequence[Any],
    *,
    reject: Callable[[list[Rejected]], Awaitable[None]] | None = None,
    one_by_one: bool = False,
) -> RelayBatch:
    """Chain one partition's ``records`` (aiokafka ``ConsumerRecord``s, in offset order) and store the partition's
    next offset, in one transaction on ``conn``.

    Records that are not entries are handed to ``reject`` (the dead letters) before the transaction commits, so
    none is passed over unrecorded. ``one_by_one`` appends each entry under a savepoint of its own and rejects the
    ones PostgreSQL refuses (the retry of a batch that failed with a data error): one bad record never stalls the
    partition."""
    rows: list[tuple[str, int, AccessEntry, bytes, Any]] = []
    rejected: list[Rejected] = []
    skipped = 0
    async with conn.transaction():
        stored = await conn.fetchval(
            f"INSERT INTO {_OFFSETS} AS o (topic, partition, next_offset) VALUES ($1, $2, 0) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = o.next_offset RETURNING next_offset",
            topic,
            partition,
        )  # the row, locked until commit: a second relay holding this partition waits here, then skips
        next_offset = stored
        gap = 0
        for record in records:
            if record.offset < stored:
                skipped += 1
                continue
            if next_offset == stored and record.offset > stored:
                gap = record.offset - stored  # offsets of a topic like this one are contiguous
            next_offset = max(next_offset, record.offset + 1)
            try:
                entry, citizen_id = entry_of(record.key, record.value)
            except ValueError as exc:
                rejected.append(_rejected(record, topic, partition, str(exc)))
                continue
            rows.append((citizen_id, record.offset, entry, record.value, record))
        # Chain heads are locked in citizen order, as every appender takes them (no deadlock with a citizen's own
        # read appending on the primary); one citizen's entries keep their topic order.
        rows.sort(key=lambda row: (row[0], row[1]))
        chained = 0
        if rows and not one_by_one:
            await conn.executemany(APPEND, [append_arguments(cid, entry, body) for cid, _, entry, body, _ in rows])
            chained = len(rows)
        for cid, _, entry, body, record in rows if one_by_one else ():
            try:
                async with conn.transaction():
                    await conn.execute(APPEND, *append_arguments(cid, entry, body))
                chained += 1
            except _RECORD_ERRORS as exc:
                rejected.append(_rejected(record, topic, partition, f"PostgreSQL refused it: {exc}"))
        if next_offset != stored:
            await conn.execute(
                f"UPDATE {_OFFSETS} SET next_offset = $3 WHERE topic = $1 AND partition = $2",
                topic,
                partition,
                next_offset,
            )
        if rejected and reject is not None:
            await reject(rejected)
    return RelayBatch(chained, skipped, rejected, gap, next_offset)


def _rejected(record: Any, topic: str, partition: int, reason: str) -> Rejected:
    return Rejected(
        record.key,
        record.value,
        f"access-log relay: {reason}",
        tuple(record.headers or ()),
        topic,
        partition,
        record.offset,
    )


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, relay: AccessLogRelay) -> None:
        self.relay = relay

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None  # a batch in flight commits with its offset or not at all; a late one is fenced by the row

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await LISTENER_RETRY.retrying("positioning the access-log relay at its stored offsets")(
                self.relay.seek_to_stored, assigned
            )
        except Exception as exc:
            # The position stays at the offsets last committed to Kafka (a hint, at most a batch behind): the fence
            # skips what was chained.
            log.error("access-log relay: stored offsets unreadable (%s); starting from Kafka's committed ones", exc)


class AccessLogRelay:
    """Chains the access-log topic's entries into PostgreSQL: one consumer per query API process, in one group.

    Runs until stopped, retrying with ``retry`` (``services.retry``, no deadline): Kafka unreachable, a batch that
    fails (PostgreSQL down, a deadlock), a dead letter that cannot be published (its batch stays uncommitted until
    it is) — nothing is lost. A batch PostgreSQL refuses for its data is retried one record at a time: one bad
    record does not stop its partition.
    """

    def __init__(
        self,
        consumer: Callable[[], AIOKafkaConsumer],
        producer: Callable[[], AIOKafkaProducer],
        connection: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        *,
        topic: str,
        dead_letter_topic: str,
        on_batch: Callable[[int, RelayBatch, int | None], None] | None = None,
        retry: RetryPolicy = DAEMON_RETRY,
    ) -> None:
        self.new_consumer = consumer
        self.new_producer = producer
        self.connection = connection
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.on_batch = on_batch
        self.retry = retry
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    async def seek_to_stored(self, assigned: set[TopicPartition]) -> None:
        consumer = self.consumer
        if not assigned or consumer is None:
            return
        async with self.connection() as conn:
            rows = await conn.fetch(f"SELECT partition, next_offset FROM {_OFFSETS} WHERE topic = $1", self.topic)
        stored = {r["partition"]: r["next_offset"] for r in rows}
        ends = await consumer.end_offsets(list(assigned))
        for tp in sorted(assigned):
            offset = stored.get(tp.partition, 0)
            if offset > ends.get(tp, offset):
                log.error(
                    "access-log relay: partition %d of %s ends at %d, but its entries were chained up to %d: was the "
                    "topic recreated? New entries would be skipped as chained: the owner role must reset that row "
                    "of access_log_offsets (README, Reads from a standby)",
                    tp.partition,
                    tp.topic,
                    ends[tp],
                    offset,
                )
            consumer.seek(tp, offset)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="access-log relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping: whatever ended it was logged
                await task

    async def _run(self) -> None:
        # Whatever stops the consumer (Kafka gone, a rebalance error, an ACL changed under it) is retried from a
        # fresh connection for as long as the relay runs: a relay that died would leave entries unchained.
        await self.retry.retrying("running the access-log relay", retryable=any_error)(self._consume)

    async def _consume(self) -> None:
        try:
            await self._connect()
            consumer = self.consumer
            assert consumer is not None
            while True:
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
                for tp, records in batches.items():
                    if records:
                        await self._relay(consumer, tp, records)
        finally:
            await self._close()

    def _retrying(self, what: str) -> AsyncRetrying:
        # Retried for as long as the relay runs, except PostgreSQL refusing a record's data, which ``_relay``
        # answers by going one record at a time.
        return self.retry.retrying(what, retryable=lambda exc: any_error(exc) and not isinstance(exc, _RECORD_ERRORS))

    async def _connect(self) -> None:
        await self._close()
        self.producer = self.new_producer()
        await self.producer.start()
        self.consumer = self.new_consumer()
        self.consumer.subscribe([self.topic], listener=_SeekToStored(self))
        await self.consumer.start()

    async def _close(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        self.consumer = self.producer = None

    async def _relay(self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: Sequence[Any]) -> None:
        async def attempt(one_by_one: bool) -> RelayBatch:
            async with self.connection() as conn:
                return await apply_batch(
                    conn, tp.topic, tp.partition, records, reject=self._dead_letters, one_by_one=one_by_one
                )

        what = f"chaining partition {tp.partition} of {tp.topic}"
        try:
            done: RelayBatch = await self._retrying(what)(attempt, False)
        except _RECORD_ERRORS as exc:
            log.warning("access-log relay: PostgreSQL refused a record (%s); %s one record at a time", exc, what)
            done = await self._retrying(what)(attempt, True)
        if done.gap:
            log.error(
                "access-log relay: %d records of partition %d of %s before offset %d were never chained: they left "
                "the topic before the relay reached them (retention) or the topic was recreated",
                done.gap,
                tp.partition,
                tp.topic,
                done.next_offset,
            )
        try:
            # A hint only (the stored offsets decide): consumer-group lag for Kafka's own tools, and where to start
            # should the stored offsets be unreadable during a rebalance.
            await consumer.commit({tp: done.next_offset})
        except Exception as exc:
            log.debug("access-log relay: offset hint not committed (%s)", exc)
        if self.on_batch is not None:
            highwater = consumer.highwater(tp)
            self.on_batch(tp.partition, done, None if highwater is None else max(0, highwater - done.next_offset))

    async def _dead_letters(self, rejected: list[Rejected]) -> None:
        for letter in rejected:
            log.error(
                "access-log relay: record %s of partition %s rejected: %s",
                letter.offset,
                letter.partition,
                letter.reason,
            )
        assert self.producer is not None
        await publish_dead_letters(self.producer, self.dead_letter_topic, rejected, rejected_by=REJECTED_BY)
