"""``renkou audit verify --log``: every archive row against the Kafka record it was archived from.

The log is the system of record and the final witness: the projector archives each record's value verbatim with
its coordinates (topic, partition, offset), so every row must equal — byte for byte — the record at those
coordinates, keyed by the row's citizen. Walking the archive in log order beside each partition of the four
department topics (one sorted pass over the archive, one sequential read of the log), this names:

* a row whose body is not the record's bytes, or whose record is keyed by another citizen (*rewritten*);
* a row whose coordinates hold no record, or a second row claiming a record already matched (*added*);
* a record below the projection's checkpoint that was neither archived, nor a duplicate of an archived event,
  nor dead-lettered (*removed*).

Bodies are compared through SHA-256 (PostgreSQL digests each body; the record's value is digested here), so
the archive's bodies never cross the wire. ``locate_rewrites`` does the same for a few named chains only: the
anchor check uses it to find *which* row of a rewritten chain differs from the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from events import DEPARTMENTS, topic_for
from projections.resident.reads import archive_claims, archived_event_ids, chain_claims_upto, dead_letters_at
from services.anchor.builder import ARCHIVE, checkpoints
from services.kafka.metadata import refresh_metadata
from services.operations.anchor_check import Finding, FindingList, LogReport
from services.operations.base import department_partitions, log_ends, log_starts, short_hex

_SEEK_GAP = 500  # a one-citizen check seeks past gaps longer than this instead of reading through them


class _Partition:
    """One partition read forward from a position, with one record of look-ahead."""

    def __init__(self, consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> None:
        self.consumer = consumer
        self.tp = tp
        self.end = end
        self.position = 0
        self._buffer: deque[ConsumerRecord[Any, Any]] = deque()
        consumer.assign([tp])

    def seek(self, offset: int) -> None:
        self.consumer.seek(self.tp, offset)
        self._buffer.clear()
        self.position = offset

    def unread(self, record: ConsumerRecord[Any, Any]) -> None:
        self._buffer.appendleft(record)
        self.position = record.offset

    async def next(self, wait_s: float = 30.0) -> ConsumerRecord[Any, Any] | None:
        """The next record below ``end``, or ``None`` at the end."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while not self._buffer:
            if self.position >= self.end:
                return None
            batch = await self.consumer.getmany(self.tp, timeout_ms=1000, max_records=1000)
            records = [r for r in batch.get(self.tp, []) if r.offset < self.end]
            self._buffer.extend(records)
            if not records:
                if await self.consumer.position(self.tp) >= self.end:
                    self.position = self.end
                    return None
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"reading {self.tp.topic}[{self.tp.partition}] stalled at {self.position}")
        record = self._buffer.popleft()
        self.position = record.offset + 1
        return record


def _where(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"


def _digest(value: bytes | None) -> bytes:
    return hashlib.sha256(value or b"").digest()


def _compare(row: asyncpg.Record, record: ConsumerRecord[Any, Any], namespace: str) -> Finding | None:
    where = _where(row["topic"], row["kafka_partition"], row["kafka_offset"])
    cid, dept, seq = row["citizen_id"], row["department"], row["chain_seq"]
    logged = _digest(record.value)
    if logged != bytes(row["digest"]):
        return Finding(
            ARCHIVE,
            "rewritten",
            f"its body is not the bytes of the log record {where} (sha256 {short_hex(logged, 16)} in the log, "
            f"{short_hex(bytes(row['digest']), 16)} archived)",
            cid,
            dept,
            seq,
        )
    key = (record.key or b"").decode("utf-8", errors="replace").upper()
    if key != cid:
        return Finding(
            ARCHIVE, "rewritten", f"the log record {where} is keyed {key!r}, not this resident", cid, dept, seq
        )
    if row["topic"] != topic_for(dept, namespace):
        return Finding(ARCHIVE, "rewritten", f"archived as {dept}, but {where} is another department's", cid, dept, seq)
    return None


def _event_id(value: bytes | None) -> str | None:
    try:
        data = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    event_id = data.get("event_id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) else None


async def compare_with_log(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    *,
    schema: str,
    namespace: str,
    citizen_id: str | None = None,
    limit: int = 100,
) -> LogReport:
    """Every archive row of ``schema`` (one citizen's, when given) against its Kafka record."""
    report = LogReport()
    found = FindingList(report, limit)
    consumer.unsubscribe()  # a manual assignment would limit the metadata the client keeps to its topics
    partitions = await department_partitions(consumer, namespace)
    starts = await log_starts(consumer, partitions)
    ends = await log_ends(consumer, partitions)
    cps = {(t, p): o for t, p, o in await checkpoints(conn, schema)}
    full = citizen_id is None
    unarchived: list[ConsumerRecord[Any, Any]] = []
    seen: set[tuple[str, int]] = set()

    async def drain(reader: _Partition, until: int) -> None:
        """Read on to ``until``: in a full check every record passed below the checkpoint has no row."""
        checkpoint = cps.get(reader_key(reader), 0)
        while reader.position < until:
            record = await reader.next()
            if record is None:
                return
            if record.offset >= until:
                reader.unread(record)
                return
            report.records += 1
            if record.offset < checkpoint:
                unarchived.append(record)

    claims_of = archive_claims(citizen_id, schema)
    reader: _Partition | None = None
    current: tuple[str, int] | None = None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for claims in _claims(conn.cursor(*claims_of, prefetch=2000)):
            first = claims[0]
            tp = (first["topic"], first["kafka_partition"])
            offset = first["kafka_offset"]
            report.rows += len(claims)
            if tp != current:
                if reader is not None and full:
                    await drain(reader, cps.get(reader_key(reader), 0))
                current = tp
                seen.add(tp)
                if tp in starts:
                    reader = _Partition(consumer, TopicPartition(*tp), ends[tp])
                    reader.seek(starts[tp] if full else offset)
                else:
                    reader = None
            here = _where(first["topic"], first["kafka_partition"], offset)
            if reader is None:
                for row in claims:
                    found.add(_added(row, f"archived from {here}, a partition the log does not have"))
                continue
            if full:
                await drain(reader, offset)
            elif offset - reader.position > _SEEK_GAP or offset < reader.position:
                reader.seek(offset)
            record = await reader.next()
            while record is not None and record.offset < offset:  # only in a one-citizen check: not ours
                report.records += 1
                record = await reader.next()
            if record is None or record.offset != offset:
                if record is not None:
                    reader.unread(record)
                for row in claims:
                    found.add(_added(row, f"archived from {here}, but the log holds no record there"))
                continue
            report.records += 1
            for finding in _judge_claims(claims, record, namespace, here):
                found.add(finding)
        if full:
            if reader is not None:
                await drain(reader, cps.get(reader_key(reader), 0))
            for tp_ in partitions:
                key = (tp_.topic, tp_.partition)
                if key not in seen and cps.get(key, 0) > starts[key]:
                    idle = _Partition(consumer, tp_, ends[key])
                    idle.seek(starts[key])
                    await drain(idle, cps[key])
            await _explain_unarchived(conn, schema, namespace, unarchived, cps, found)
    return report


async def _claims(rows: AsyncIterator[asyncpg.Record]) -> AsyncIterator[list[asyncpg.Record]]:
    """The archive rows in log order, grouped by the record they claim to be (one per record, honestly)."""
    group: list[asyncpg.Record] = []
    async for row in rows:
        if group and _coordinates(row) != _coordinates(group[0]):
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _coordinates(row: asyncpg.Record) -> tuple[str, int, int]:
    return (row["topic"], row["kafka_partition"], row["kafka_offset"])


def _added(row: asyncpg.Record, detail: str) -> Finding:
    return Finding(ARCHIVE, "added", detail, row["citizen_id"], row["department"], row["chain_seq"])


def _judge_claims(
    claims: list[asyncpg.Record], record: ConsumerRecord[Any, Any], namespace: str, here: str
) -> list[Finding]:
    """The rows claiming ``record``: one that equals it is its row; any other row was added (or, when none
    equals it, each was rewritten)."""
    problems = [_compare(row, record, namespace) for row in claims]
    genuine = next((row for row, problem in zip(claims, problems, strict=True) if problem is None), None)
    if genuine is None:
        return [p for p in problems if p is not None]
    return [
        _added(
            row,
            f"it claims the log record {here}, which is row {genuine['citizen_id']}/{genuine['department']} "
            f"#{genuine['chain_seq']}",
        )
        for row in claims
        if row is not genuine
    ]


def reader_key(reader: _Partition) -> tuple[str, int]:
    return (reader.tp.topic, reader.tp.partition)


async def _explain_unarchived(
    conn: asyncpg.Connection,
    schema: str,
    namespace: str,
    records: list[ConsumerRecord[Any, Any]],
    cps: dict[tuple[str, int], int],
    found: FindingList,
) -> None:
    """Records without a row: each must be a dead letter or a duplicate of an archived event, else it was removed."""
    if not records:
        return
    dead = await dead_letters_at(conn, [(r.topic, r.partition, r.offset) for r in records], schema)
    rest = [r for r in records if (r.topic, r.partition, r.offset) not in dead]
    ids = {eid for eid in (_event_id(r.value) for r in rest) if eid is not None}
    archived: set[str] = set()
    if ids:
        valid = [u for u in (_uuid(i) for i in ids) if u is not None]
        archived = await archived_event_ids(conn, valid, schema)
    departments = {topic_for(d, namespace): d for d in DEPARTMENTS}
    for r in rest:
        eid = _event_id(r.value)
        if eid is not None and eid.lower() in archived:
            continue  # a redelivered or re-sent event: applied once, at its first record
        key = (r.key or b"").decode("utf-8", errors="replace").upper() or None
        found.add(
            Finding(
                ARCHIVE,
                "removed",
                f"the log record {_where(r.topic, r.partition, r.offset)} (event {eid or 'without an id'}) is "
                f"below the checkpoint {cps.get((r.topic, r.partition), 0)} but neither "
                "archived, nor a duplicate of an archived event, nor a dead letter",
                key,
                departments.get(r.topic),
            )
        )


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def locate_rewrites(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    *,
    schema: str,
    namespace: str,
    chains: list[tuple[str, str, int]],
    most: int = 20,
) -> list[Finding]:
    """For archive chains found rewritten up to a position: the rows there that differ from their log records."""
    located: list[Finding] = []
    for cid, dept, upto in chains[:most]:
        consumer.unsubscribe()  # reading one partition below narrowed the metadata the client keeps
        await refresh_metadata(consumer)
        rows = await chain_claims_upto(conn, cid, dept, upto, schema)
        wanted = {TopicPartition(r["topic"], r["kafka_partition"]) for r in rows}
        try:
            ends = await consumer.end_offsets(list(wanted))
        except KafkaError:  # a partition the log does not have: every row naming it is reported below
            ends = {}
        for row in rows:
            tp = TopicPartition(row["topic"], row["kafka_partition"])
            here = _where(row["topic"], row["kafka_partition"], row["kafka_offset"])
            record = None
            if tp in ends and row["kafka_offset"] < ends[tp]:
                reader = _Partition(consumer, tp, row["kafka_offset"] + 1)
                reader.seek(row["kafka_offset"])
                record = await reader.next()
            if record is None or record.offset != row["kafka_offset"]:
                located.append(
                    Finding(
                        ARCHIVE,
                        "added",
                        f"archived from {here}, but the log holds no record there",
                        cid,
                        dept,
                        row["chain_seq"],
                    )
                )
                continue
            problem = _compare(row, record, namespace)
            if problem is not None:
                located.append(problem)
    return located
