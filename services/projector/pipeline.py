"""One batch of Kafka records → one transaction of the projection store (PostgreSQL in production), exactly once.

The steps, all inside the caller's transaction:

1. lock the checkpoints of the batch's partitions and drop records below them (the fence against a stale owner);
2. parse every record with ``events.parse_event``; what fails, or sits on the wrong topic, becomes a dead letter;
3. drop events whose ``event_id`` is already archived with the same content (redelivery); the same id with other
   content is a dead letter;
4. load the touched sections in one query and fold the events onto them with the pure
   ``projections.resident.batch.fold_batch`` (states, hash chains, family and household rows, number links);
5. write what it returns, the dead letters and the new checkpoints through the ``ProjectionStore`` (PostgreSQL in
   production, memory in the pipeline's unit tests).

Dead letters are published to Kafka before the transaction commits (at least once; the table row is exact).

Nothing stalls (CONTRACT §10). ``commit`` runs the batch in one transaction; if that fails for a reason other
than an outage (``failures.is_outage``), it runs the batch once more with ``isolate=True``: after the fence,
the records are applied in halves, each in a savepoint of its own, halving a failing part again down to the
record that fails alone — which becomes a dead letter with the error as its reason, while every other record
is applied. The halves are consecutive slices of the fenced records (in partition and offset order), so each
partition's records are still applied in order; the fence, the dead letters and the checkpoints (past every
record of the batch, dead-lettered or not) are written once, in the enclosing transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, Protocol
from uuid import UUID

from events import DEPARTMENTS, InvalidEvent, parse_event, topic_for
from events.bounds import MAX_RECORD_BYTES
from events.envelope import Event, Payload
from projections.resident.batch import (
    Accepted,
    BatchWrite,
    ConnT,
    DeadLetterRow,
    ProjectionStore,
    fold_batch,
    section_keys,
)
from services.dead_letters import COPY_LIMIT, printable, record_size
from services.projector.failures import describe, is_outage


class Record(Protocol):
    """What the pipeline needs of a Kafka record (aiokafka's ``ConsumerRecord`` fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def timestamp_type(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A ``Record`` held in memory: for feeding the pipeline records that were not just consumed from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp: int | None = None
    timestamp_type: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A rejected record, untouched, and why."""

    record: Record
    reason: str
    event_id: str | None = None


@dataclass
class BatchResult:
    """What a batch did, for metrics, logs and the caller's seeks."""

    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_by_department: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Partitions whose records did not follow on from the stored checkpoint: seek them back to it.
    resync: dict[tuple[str, int], int] = field(default_factory=dict)
    changed_citizens: set[str] = field(default_factory=set)
    # The last offset of the batch in each of its partitions (applied, stale or not), for lag metrics.
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # Records dead-lettered because applying them failed (found by isolating them), and the parts tried to find
    # them (for logs and metrics; 0 when the batch applied whole).
    isolated: int = 0
    attempts: int = 0
    # What failed the batch's first transaction, when ``commit`` had to isolate records.
    failure: BaseException | None = None

    def absorb(self, part: BatchResult) -> None:
        """Add what ``part`` (a slice of this batch, applied in a savepoint) did."""
        self.applied += part.applied
        self.duplicates += part.duplicates
        self.dead_letters.extend(part.dead_letters)
        for department, count in part.applied_by_department.items():
            self.applied_by_department[department] += count
        self.changed_citizens |= part.changed_citizens


def _logged_at(record: Record) -> datetime | None:
    """When the log learnt of ``record``: the broker's append time (``LogAppendTime``, what department topics are
    declared with); a producer's own timestamp (``CreateTime``) is a department's word and is not kept."""
    stamp = record.timestamp
    if record.timestamp_type != LOG_APPEND_TIME or stamp is None or not 0 <= stamp < _MAX_STAMP_MS:
        return None
    return _EPOCH + timedelta(milliseconds=stamp)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_STAMP_MS: Final = 253_402_300_799_000  # 9999-12-31T23:59:59Z
LOG_APPEND_TIME: Final = 1
"""Kafka's timestamp type of a record the broker stamped on append."""


class BatchProjector(Generic[ConnT]):
    """Applies batches of department records to one projection store (a PostgreSQL schema, or memory)."""

    def __init__(
        self,
        store: ProjectionStore[ConnT],
        *,
        namespace: str = "",
        publish_dead_letters: Callable[[Sequence[DeadLetter]], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.publish_dead_letters = publish_dead_letters
        # Looked up once per record: the department topics of this namespace.
        self._departments = {topic_for(d, namespace): d for d in DEPARTMENTS}

    async def commit(self, conn: ConnT, records: Sequence[Record]) -> BatchResult:
        """Apply ``records`` and commit, on ``conn`` (no transaction open): in one transaction, or — when that
        fails for the records' content rather than an outage — in a second one that isolates and dead-letters
        the records that cannot be applied. An outage (or a failure of the second transaction) is raised; the
        caller retries the same records later."""
        try:
            async with conn.transaction():
                return await self.process(conn, records)
        except Exception as exc:
            if is_outage(exc):
                raise
            failure = exc
        async with conn.transaction():
            result = await self.process(conn, records, isolate=True)
        result.failure = failure
        return result

    async def process(self, conn: ConnT, records: Sequence[Record], *, isolate: bool = False) -> BatchResult:
        """Apply ``records`` inside the caller's open transaction on ``conn``.

        ``isolate``: apply them in savepoints, bisecting whatever fails for its content down to the records that
        fail alone, and dead-letter those (see the module docstring); an outage is raised as it is.
        """
        result = BatchResult()
        fresh = await self._fence(conn, records, result)
        checkpoints = {tp: max(r.offset for r in recs) + 1 for tp, recs in _by_partition(fresh).items()}
        if isolate:
            await self._isolate(conn, fresh, result)
            write = BatchWrite.nothing()
        else:
            write = await self._prepare(conn, fresh, result)
        write.checkpoints = checkpoints
        write.dead_letters = [_dead_letter_row(d) for d in result.dead_letters]
        await self.store.write(conn, write)
        # Published once the batch is written (a write that fails publishes nothing), before it commits.
        if result.dead_letters and self.publish_dead_letters is not None:
            await self.publish_dead_letters(result.dead_letters)
        return result

    async def _prepare(self, conn: ConnT, records: Sequence[Record], result: BatchResult) -> BatchWrite:
        """Parse, deduplicate and fold ``records``: what they write (without checkpoints and dead letters)."""
        accepted = self._parse(records, result)
        unique = await self._dedupe(conn, accepted, result)
        return await self._fold(conn, unique, result)

    async def _isolate(self, conn: ConnT, records: Sequence[Record], result: BatchResult) -> None:
        """Apply ``records`` in a savepoint; if that fails for their content, each half in turn the same way, and a
        single record that fails alone becomes a dead letter. Only what a savepoint committed counts."""
        if not records:
            return
        part = BatchResult()
        result.attempts += 1
        try:
            async with conn.transaction():  # a savepoint inside the batch's transaction
                write = await self._prepare(conn, records, part)
                await self.store.write(conn, write)
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(records) > 1:
                middle = len(records) // 2
                await self._isolate(conn, records[:middle], result)
                await self._isolate(conn, records[middle:], result)
                return
            [record] = records
            result.isolated += 1
            result.dead_letters.append(
                DeadLetter(record, f"could not be applied: {describe(exc)}", _event_id_of(record.value))
            )
            return
        result.absorb(part)

    async def _fence(self, conn: ConnT, records: Sequence[Record], result: BatchResult) -> list[Record]:
        groups = _by_partition(records)
        stored = await self.store.lock_checkpoints(conn, sorted(groups))
        fresh: list[Record] = []
        for tp, recs in sorted(groups.items()):
            result.last_offsets[tp] = recs[-1].offset  # the records are in offset order
            next_offset = stored.get(tp, 0)
            kept = [r for r in recs if r.offset >= next_offset]
            result.stale += len(recs) - len(kept)
            if kept and kept[0].offset > next_offset and next_offset > 0:
                # Records between the checkpoint and this batch were never applied: do not skip over them.
                result.resync[tp] = next_offset
                result.stale += len(kept)
                continue
            fresh.extend(kept)
        return fresh

    def _parse(self, records: Sequence[Record], result: BatchResult) -> list[tuple[Record, Event[Payload]]]:
        accepted: list[tuple[Record, Event[Payload]]] = []
        for record in records:
            reason, event = self._check(record)
            if event is None:
                result.dead_letters.append(DeadLetter(record, reason or "rejected", _event_id_of(record.value)))
            else:
                accepted.append((record, event))
        return accepted

    def _check(self, record: Record) -> tuple[str | None, Event[Payload] | None]:
        topic_dept = self._departments.get(record.topic)
        if record.value is None:
            return "record has no value (a tombstone is not an event)", None
        if len(record.key or b"") > MAX_RECORD_BYTES:  # parse_event bounds the value; a key is the record's too
            return f"record key: {len(record.key or b''):,} bytes, no citizen ID is that long", None
        try:
            event = parse_event(record.value)
        except InvalidEvent as exc:
            return str(exc), None  # InvalidEvent's message already reads "invalid event: …"
        if topic_dept != event.department:
            return (
                f"event type {event.event_type} belongs to {event.department}, not on topic {record.topic}"
                f" (a department writes only its own types on its own topic)"
            ), None
        key = (record.key or b"").decode("utf-8", errors="replace").upper()
        if key != event.citizen_id:
            return (
                f"record key {key!r} is not the event's citizen_id {event.citizen_id!r}: records are keyed "
                "by citizen ID so that one resident's events stay in order"
            ), None
        return None, event

    async def _dedupe(
        self, conn: ConnT, accepted: list[tuple[Record, Event[Payload]]], result: BatchResult
    ) -> list[tuple[Record, Event[Payload], bytes]]:
        archived = await self.store.archived_bodies(conn, [e.event_id for _, e in accepted])
        seen: dict[UUID, bytes] = dict(archived)
        unique: list[tuple[Record, Event[Payload], bytes]] = []
        for record, event in accepted:
            # The archive keeps the record's value verbatim: what the log holds is what auditors compare, and
            # the hash chain covers exactly those bytes. A redelivery is byte-identical; a re-send that only
            # formats the same event differently is recognised by its canonical form (the rare, slow path).
            body = record.value or b""
            earlier = seen.get(event.event_id)
            if earlier is None:
                seen[event.event_id] = body
                unique.append((record, event, body))
            elif earlier == body or _same_event(earlier, event):
                result.duplicates += 1  # redelivered: applied once already, however often it arrives
            else:
                result.dead_letters.append(
                    DeadLetter(
                        record,
                        f"event_id {event.event_id} was already used for an event with different content",
                        str(event.event_id),
                    )
                )
        return unique

    async def _fold(
        self, conn: ConnT, accepted: list[tuple[Record, Event[Payload], bytes]], result: BatchResult
    ) -> BatchWrite:
        batch = [Accepted(e, body, r.topic, r.partition, r.offset, _logged_at(r)) for r, e, body in accepted]
        write = fold_batch(batch, await self.store.load_sections(conn, section_keys(batch)))
        result.applied += len(batch)
        for a in batch:
            result.applied_by_department[a.event.source.department] += 1
        result.changed_citizens |= write.changed_citizens
        return write


def _dead_letter_row(letter: DeadLetter) -> DeadLetterRow:
    """The table row of a dead letter: like the letter on the topic, a record too large to copy is kept by
    reference (its coordinates are the row's key; the record stays in its topic)."""
    record = letter.record
    value, size = record.value, None
    if record_size(record.key, value) > COPY_LIMIT:
        value, size = None, len(value or b"")
    key = record.key if len(record.key or b"") <= COPY_LIMIT // 2 else None
    return DeadLetterRow(
        record.topic,
        record.partition,
        record.offset,
        printable(letter.reason),
        key,
        value,
        letter.event_id,
        size,
    )


def _same_event(archived_body: bytes, event: Event[Payload]) -> bool:
    try:
        return parse_event(archived_body).canonical_bytes() == event.canonical_bytes()
    except InvalidEvent:
        return False


def _by_partition(records: Sequence[Record]) -> dict[tuple[str, int], list[Record]]:
    groups: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.topic, record.partition)].append(record)
    for recs in groups.values():
        recs.sort(key=lambda r: r.offset)
    return groups


def _event_id_of(value: bytes | None) -> str | None:
    """Best effort: the event_id of a rejected record, for finding it again (never trusted for anything else)."""
    if not value:
        return None
    import json

    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    event_id = data.get("event_id") if isinstance(data, dict) else None
    # Stored as text and sent in headers: no NUL, no lone surrogate, whatever the record holds.
    return printable(str(event_id))[:64] if event_id is not None else None
