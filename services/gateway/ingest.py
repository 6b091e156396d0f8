"""What the gateway does with the events a department sent: fence, validate, deduplicate, publish, remember.

For each request (one event or a batch):

1. **Fence and validate.** An event type of another department is refused (403, naming the owner); every other
   event goes through ``events.parse_event`` (422 naming each failed rule).
2. **Claim the event IDs** in PostgreSQL, in one transaction kept open until step 4:
   ``INSERT INTO gateway_events ... ON CONFLICT (event_id) DO NOTHING``, sorted by ``event_id``. A concurrent
   request carrying the same ``event_id`` blocks on the uncommitted row until this one commits or rolls back, so
   two identical requests racing each other publish once: the second sees the committed row and answers 200.
   IDs that were already there are answered from the stored row: the same content hash → 200 with the original
   coordinates, other content → 409.
3. **Publish** the claimed events' canonical bytes (idempotent producer, ``acks=all``, keyed by citizen ID) and
   wait for Kafka's acknowledgements.
4. **Remember** the coordinates of the acknowledged events and drop the claims of those Kafka did not take
   (503), then commit. Only then does the department get its 202.

Crash windows. Dying between Kafka's acknowledgement and the commit loses the memory, not the event: the claim
rolls back, the department (which got no answer) retries, and the event is published a second time. That is
harmless by design: every consumer applies one ``event_id`` once (the projector skips it by a unique key).

Rejected events (403, 409, 422) are also written to the dead-letter topic with their reason, so that nothing a
department sent disappears without a trace.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from events import (
    DEAD_LETTER_TOPIC,
    DEPARTMENTS,
    EVENT_TYPES,
    Event,
    InvalidEvent,
    Payload,
    department_of,
    parse_event,
    topic_for,
)
from projections.resident.tables import named
from services.db import service_tables
from services.db.engine import driver_connection
from services.dead_letters import Rejected, publish_dead_letters
from services.gateway.errors import error_body
from services.gateway.metrics import GatewayMetrics
from services.outages import describe, is_outage, outage_error, outages_of
from services.publisher import Publisher, PublishError
from services.retry import lock_conflicts

_ACCEPTED: Final = named(service_tables.gateway_events)

log = logging.getLogger("renkou.gateway")

_CLAIM_ATTEMPTS = 3


class NotJson:
    """The value of a body that is not JSON at all, with the parser's reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class Submitted:
    """One event as received: its JSON value (``None`` if ``raw`` was not JSON) and the bytes to dead-letter."""

    raw: bytes
    data: Any


@dataclass
class Result:
    """What happened to one event; ``status`` is the HTTP status it gets on its own."""

    index: int
    status: int
    event_id: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    error: dict[str, Any] | None = None
    outcome: str = "accepted"

    def coordinates(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "topic": self.topic, "partition": self.partition, "offset": self.offset}

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"index": self.index, "status": self.status, "event_id": self.event_id, "error": self.error}
        return {"index": self.index, "status": self.status, **self.coordinates()}


@dataclass
class _Candidate:
    index: int
    event: Event[Payload]
    event_id: str
    topic: str
    value: bytes
    digest: bytes
    followers: list[int] = field(default_factory=list)


class Ingestor:
    """The gateway's logic, independent of HTTP."""

    def __init__(self, engine: AsyncEngine, publisher: Publisher, *, namespace: str, metrics: GatewayMetrics) -> None:
        self.engine = engine
        self.publisher = publisher
        self.namespace = namespace
        self.metrics = metrics
        self.topics = {d: namespace + topic_for(d) for d in DEPARTMENTS}

    async def ingest(self, department: str, items: Sequence[Submitted]) -> list[Result]:
        """Every event's result, in order."""
        results: dict[int, Result] = {}
        leaders: dict[str, _Candidate] = {}
        for index, item in enumerate(items):
            checked = self._check(department, index, item)
            if isinstance(checked, Result):
                results[index] = checked
                continue
            leader = leaders.get(checked.event_id)
            if leader is None:
                leaders[checked.event_id] = checked
            elif leader.digest == checked.digest:
                leader.followers.append(index)
            else:
                results[index] = _conflict(index, checked.event_id, "an earlier event of this request")

        if leaders:
            for result in await self._claim_and_publish(list(leaders.values())):
                results[result.index] = result
            for leader in leaders.values():
                first = results[leader.index]
                for index in leader.followers:
                    # A repeat inside one request is answered like a repeat in a later request.
                    ok = first.status in (200, 202)
                    results[index] = Result(
                        index,
                        200 if ok else first.status,
                        first.event_id,
                        first.topic,
                        first.partition,
                        first.offset,
                        first.error,
                        "duplicate" if ok else first.outcome,
                    )
        ordered = [results[i] for i in range(len(items))]
        refused = [(items[r.index], r) for r in ordered if r.status in (400, 403, 409, 422)]
        if refused:
            await self._dead_letter(department, refused)
        for outcome, count in Counter(r.outcome for r in ordered).items():
            self.metrics.events.labels(department, outcome).inc(count)
        return ordered

    # --- step 1 -----------------------------------------------------------------------------------------------
    def _check(self, department: str, index: int, item: Submitted) -> _Candidate | Result:
        data = item.data
        event_id = data.get("event_id") if isinstance(data, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        event_type = data.get("event_type") if isinstance(data, dict) else None
        # The fence comes first, so that a department learns it may not send a type at all before it learns
        # what else is wrong with the event.
        if isinstance(event_type, str) and event_type in EVENT_TYPES:
            refused = _fence(index, event_id, event_type, department)
            if refused is not None:
                return refused
        try:
            event = parse_event(item.raw)
        except InvalidEvent as exc:
            if isinstance(data, NotJson) and exc.errors and exc.errors[0][1].startswith("not valid JSON"):
                message = f"the body is not JSON: {exc.errors[0][1].removeprefix('not valid JSON: ')}"
                return Result(index, 400, error=error_body("malformed_json", message, exc.errors), outcome="invalid")
            return Result(
                index, 422, event_id, error=error_body("invalid_event", str(exc), exc.errors), outcome="invalid"
            )
        event_id = str(event.event_id)
        refused = _fence(index, event_id, event.event_type, department)
        if refused is not None:
            return refused
        value = event.canonical_bytes()
        topic = self.topics[event.department]
        return _Candidate(index, event, event_id, topic, value, hashlib.sha256(value).digest())

    # --- steps 2-4 --------------------------------------------------------------------------------------------
    async def _claim_and_publish(self, candidates: list[_Candidate]) -> list[Result]:
        try:
            with outages_of("postgresql"):  # Kafka's errors are answered inside, per event
                # Two batches claiming the same event IDs in another order may deadlock: one runs again.
                claimed: list[Result] = await lock_conflicts(_CLAIM_ATTEMPTS)(self._transaction, candidates)
                return claimed
        except Exception as exc:
            # Any outage — a refused connection, the server gone at COMMIT ("cannot switch to state 15"), a pool
            # timeout — leaves nothing claimed (the transaction did not commit): every event gets a 503 and the
            # department sends it again. A bug is not an outage and stays a 500.
            if not is_outage(exc):
                raise
            code, message = outage_error(exc)
            log.warning("%s while claiming and publishing: %s", code, describe(exc))
            return [_unavailable(c, code, f"{message} (repeats are safe)") for c in candidates]
        raise AssertionError("unreachable")

    async def _transaction(self, candidates: list[_Candidate]) -> list[Result]:
        # UUID objects all along: asyncpg encodes them without parsing text, and they sort like PostgreSQL's uuid.
        by_id = {c.event.event_id: c for c in candidates}
        ids = sorted(by_id, key=attrgetter("int"))
        results: list[Result] = []
        async with driver_connection(self.engine) as conn, conn.transaction():
            claimed = {
                r["event_id"]
                for r in await conn.fetch(
                    f"INSERT INTO {_ACCEPTED} "
                    "(event_id, content_hash, department, topic, kafka_partition, kafka_offset) "
                    "SELECT e, h, d, t, -1, -1 FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[]) "
                    "AS u(e, h, d, t) ORDER BY e "
                    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                    ids,
                    [by_id[i].digest for i in ids],
                    [by_id[i].event.department for i in ids],
                    [by_id[i].topic for i in ids],
                )
            }
            known = [i for i in ids if i not in claimed]
            if known:
                rows = await conn.fetch(
                    f"SELECT event_id, content_hash, topic, kafka_partition, kafka_offset FROM {_ACCEPTED} "
                    "WHERE event_id = ANY($1::uuid[])",
                    known,
                )
                for row in rows:
                    results.append(self._repeat(by_id[row["event_id"]], row))
            fresh = [c for c in candidates if c.event.event_id in claimed]
            if fresh:
                results.extend(await self._publish(conn, fresh))
        return results

    def _repeat(self, candidate: _Candidate, row: asyncpg.Record) -> Result:
        if bytes(row["content_hash"]) == candidate.digest:
            return Result(
                candidate.index,
                200,
                candidate.event_id,
                row["topic"],
                row["kafka_partition"],
                row["kafka_offset"],
                outcome="duplicate",
            )
        return _conflict(
            candidate.index,
            candidate.event_id,
            f"{row['topic']}[{row['kafka_partition']}]@{row['kafka_offset']}",
        )

    async def _publish(self, conn: asyncpg.Connection, fresh: list[_Candidate]) -> list[Result]:
        sent = await self.publisher.send_records([(c.topic, c.event.key, c.value) for c in fresh])
        results: list[Result] = []
        acked: list[tuple[UUID, int, int]] = []
        failed: list[UUID] = []
        for candidate, outcome in zip(fresh, sent, strict=True):
            if isinstance(outcome, PublishError):
                failed.append(candidate.event.event_id)
                results.append(_unavailable(candidate, "kafka_unavailable", f"{outcome}; retry, repeats are safe"))
                continue
            topic, partition, offset = outcome
            acked.append((candidate.event.event_id, partition, offset))
            results.append(Result(candidate.index, 202, candidate.event_id, topic, partition, offset))
        if acked:
            await conn.execute(
                f"UPDATE {_ACCEPTED} AS g SET kafka_partition = a.p, kafka_offset = a.o, accepted_at = now() "
                "FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS a(e, p, o) WHERE g.event_id = a.e",
                [a[0] for a in acked],
                [a[1] for a in acked],
                [a[2] for a in acked],
            )
        if failed:
            await conn.execute(f"DELETE FROM {_ACCEPTED} WHERE event_id = ANY($1::uuid[])", failed)
        return results

    # --- dead letters -----------------------------------------------------------------------------------------
    async def _dead_letter(self, department: str, rejected: list[tuple[Submitted, Result]]) -> None:
        letters = []
        for item, result in rejected:
            assert result.error is not None
            citizen = item.data.get("citizen_id") if isinstance(item.data, dict) else None
            letters.append(
                Rejected(
                    key=citizen.encode() if isinstance(citizen, str) else None,
                    value=item.raw,
                    reason=f"{result.status} {result.error['code']}: {result.error['message']}",
                    headers=[("renkou.gateway.department", department.encode())],
                )
            )
        try:
            await self.publisher.start()
            await asyncio.wait_for(
                publish_dead_letters(
                    self.publisher.producer,
                    self.namespace + DEAD_LETTER_TOPIC,
                    letters,
                    rejected_by="gateway",
                ),
                self.publisher.request_timeout_ms / 1000,
            )
        except Exception as exc:
            # The department already gets the rejection itself; losing the copy must not turn a 4xx into a 5xx.
            self.metrics.dead_letter_failures.inc(len(letters))
            log.error("could not dead-letter %d rejected events: %s", len(letters), exc)
            return
        self.metrics.dead_letters.inc(len(letters))


def _fence(index: int, event_id: str | None, event_type: str, department: str) -> Result | None:
    owner = department_of(event_type)
    if owner == department:
        return None
    message = f"{event_type!r} belongs to {owner}: the {department} token may publish only {department} event types"
    return Result(
        index,
        403,
        event_id,
        error=error_body("forbidden_event_type", message, [("event_type", message)]),
        outcome="forbidden",
    )


def _conflict(index: int, event_id: str, where: str) -> Result:
    message = f"event_id {event_id} was already accepted with other content ({where}); an event_id names one event"
    return Result(
        index,
        409,
        event_id,
        error=error_body("event_id_conflict", message, [("event_id", message)]),
        outcome="conflict",
    )


def _unavailable(candidate: _Candidate, code: str, message: str) -> Result:
    return Result(candidate.index, 503, candidate.event_id, error=error_body(code, message), outcome="unavailable")
