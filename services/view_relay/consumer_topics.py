"""Per-consumer view topics (CONTRACT §11): each consumer's own compacted topic, carrying its purpose's sections.

A grant made with ``--view-topic PURPOSE`` gets ``population.resident_view.v1.<name>``, readable only by the
Kafka principal of role ``consumer:<name>``. The relay renders each changed resident once per such grant, with
only that purpose's view sections (flags only where the purpose covers every section a flag speaks of), and:

1. delivers a view only when what this consumer may see of it changed (a digest per consumer and resident in
   ``view_topic_deliveries``): a health event does not send the school bureau the same enrolment view again, nor
   tell the resident that it did;
2. records the delivery in the access log first — an entry per resident delivered and per relative its
   ``family`` section discloses, one group per consumer and batch (``renkou_append_access_logs``, which re-checks
   the grant: a grant revoked or expired gets nothing more) —, then sends, then stores the digests. A crash in
   between delivers and records again; it never delivers unrecorded.

A new grant's topic is brought up to date with the residents already known (``view_topic_backfills``, a cursor
in citizen-ID order), a batch per round beside the changed views. The relay creates the topic, compacted, like
the main view topic (``infra/topics.toml``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from events import consumer_view_topic
from projections.resident.reads import citizens_after
from projections.resident.render import VIEW_SECTIONS, restrict_view
from projections.resident.tables import named
from services.access_log.database import AccessEntry, append_now, read_groups
from services.db import service_tables
from services.outages import is_outage
from services.residents.views import load_views

__all__ = ["ConsumerTopic", "ConsumerTopics", "active_consumer_topics"]

_BACKFILLS: Final = named(service_tables.view_topic_backfills)
_DELIVERIES: Final = named(service_tables.view_topic_deliveries)
_GRANTS: Final = named(service_tables.consumer_grants)

log = logging.getLogger("renkou.view_relay")
DIGEST_BYTES = 16


@dataclass(frozen=True, slots=True)
class ConsumerTopic:
    """One active grant's view topic: who, for which purpose, which view sections, where."""

    consumer: str
    purpose: str
    sections: tuple[str, ...]
    topic: str

    @property
    def endpoint(self) -> str:
        """The access-log endpoint of a delivery: the topic, as ``kafka:<topic>``."""
        return f"kafka:{self.topic}"


async def active_consumer_topics(conn: asyncpg.Connection, namespace: str, now: datetime) -> list[ConsumerTopic]:
    """The grants, active at ``now``, that have a view topic whose purpose covers at least one view section."""
    rows = await conn.fetch(
        f"SELECT name, view_topic, (purpose_sections -> view_topic)::text AS sections FROM {_GRANTS} "
        "WHERE view_topic IS NOT NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) "
        "ORDER BY name",
        now,
    )
    topics = []
    for row in rows:
        granted = set(json.loads(row["sections"]) or ())
        sections = tuple(s for s in VIEW_SECTIONS if s in granted)
        if sections:
            topics.append(
                ConsumerTopic(row["name"], row["view_topic"], sections, namespace + consumer_view_topic(row["name"]))
            )
    return topics


class ConsumerTopics:
    """Delivers to the consumers' view topics, on the relay's connection (which holds the publishing lock)."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        ensure_topic: Callable[[str], Awaitable[None]],
        namespace: str,
        schema: str,
        delivered: Counter,
        batch: int,
        log_timeout_s: float = 5.0,
    ) -> None:
        self.producer = producer
        self.ensure_topic = ensure_topic
        self.namespace = namespace
        self.schema = schema
        self.delivered = delivered
        self.batch = batch
        self.log_timeout_s = log_timeout_s
        self._ready: set[str] = set()

    async def consumers(self, conn: asyncpg.Connection) -> list[ConsumerTopic]:
        """The active consumer topics whose topic exists (created now if it was not yet). One whose topic cannot
        be created is left out of this round, logged, and tried again the next: it never holds up the others."""
        ready = []
        for consumer in await active_consumer_topics(conn, self.namespace, datetime.now(UTC)):
            if consumer.topic not in self._ready:
                try:
                    await self.ensure_topic(consumer.topic)
                except Exception:
                    log.exception("cannot create %s; %s gets nothing until it can", consumer.topic, consumer.consumer)
                    continue
                self._ready.add(consumer.topic)
            ready.append(consumer)
        return ready

    async def deliver(
        self,
        conn: asyncpg.Connection,
        consumers: Sequence[ConsumerTopic],
        views: Mapping[str, Mapping[str, Any]],
        superseded: Sequence[str] = (),
    ) -> None:
        """Deliver ``views`` (whole, as rendered for the main topic) to each of ``consumers``, restricted to its
        sections, where what it sees changed; and remove from its topic the records of ``superseded`` numbers it
        had received (§12: the person is under their current number now).

        A consumer whose delivery fails (its topic gone, say) does not hold up the others or the main topic: it
        is brought up to date again from the start by the backfill (its digests spare it what it already has).
        """
        for consumer in consumers:
            try:
                await self._deliver_one(conn, consumer, views)
                if superseded:
                    await self._remove(conn, consumer, superseded)
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("delivery to %s failed; it will be brought up to date again", consumer.topic)
                self._ready.discard(consumer.topic)
                await conn.execute(
                    f"UPDATE {_BACKFILLS} SET through = '', completed_at = NULL WHERE consumer = $1",
                    consumer.consumer,
                )

    async def _remove(self, conn: asyncpg.Connection, consumer: ConsumerTopic, numbers: Sequence[str]) -> None:
        """Tombstones for the superseded ``numbers`` this consumer had received, and their digests forgotten."""
        had = [
            r["citizen_id"]
            for r in await conn.fetch(
                f"DELETE FROM {_DELIVERIES} WHERE consumer = $1 AND citizen_id = ANY($2::text[]) RETURNING citizen_id",
                consumer.consumer,
                list(numbers),
            )
        ]
        futures = [await self.producer.send(consumer.topic, key=cid.encode(), value=None) for cid in had]
        await asyncio.gather(*futures)

    async def backfill(self, conn: asyncpg.Connection, consumers: Sequence[ConsumerTopic], today: date) -> bool:
        """One batch of each consumer topic still being brought up to date; whether any has more to come."""
        if not consumers:
            return False
        await conn.execute(
            f"INSERT INTO {_BACKFILLS} (consumer) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            [c.consumer for c in consumers],
        )
        cursors = {
            r["consumer"]: r["through"]
            for r in await conn.fetch(
                f"SELECT consumer, through FROM {_BACKFILLS} WHERE consumer = ANY($1::text[]) AND completed_at IS NULL",
                [c.consumer for c in consumers],
            )
        }
        more = False
        for consumer in consumers:
            if consumer.consumer not in cursors:
                continue
            ids = await citizens_after(conn, cursors[consumer.consumer], self.batch, self.schema)
            if ids:
                found = await load_views(conn, ids, today, self.schema)
                await self._deliver_one(conn, consumer, {v["citizen_id"]: v for v in found.values()})
            done = len(ids) < self.batch
            await conn.execute(
                f"UPDATE {_BACKFILLS} SET through = $2, completed_at = CASE WHEN $3 THEN now() END WHERE consumer = $1",
                consumer.consumer,
                ids[-1] if ids else cursors[consumer.consumer],
                done,
            )
            more = more or not done
        return more

    async def _deliver_one(
        self,
        conn: asyncpg.Connection,
        consumer: ConsumerTopic,
        whole: Mapping[str, Mapping[str, Any]],
    ) -> None:
        views = {cid: restrict_view(view, consumer.sections) for cid, view in whole.items()}
        encoded = {cid: orjson.dumps(view, option=orjson.OPT_SORT_KEYS) for cid, view in views.items()}
        digests = {cid: hashlib.sha256(value).digest()[:DIGEST_BYTES] for cid, value in encoded.items()}
        known = {
            r["citizen_id"]: bytes(r["digest"])
            for r in await conn.fetch(
                f"SELECT citizen_id, digest FROM {_DELIVERIES} WHERE consumer = $1 AND citizen_id = ANY($2)",
                consumer.consumer,
                list(digests),
            )
        }
        changed = sorted(cid for cid, digest in digests.items() if known.get(cid) != digest)
        if not changed:
            return
        entry = AccessEntry(
            uuid.uuid4(), consumer.consumer, consumer.purpose, consumer.sections, consumer.endpoint, datetime.now(UTC)
        )
        refused = await append_now(
            conn, read_groups(entry, [views[cid] for cid in changed]), limit_s=self.log_timeout_s
        )
        if refused:
            log.info("the grant of %s is no longer valid: nothing delivered to %s", consumer.consumer, consumer.topic)
            return
        futures = [await self.producer.send(consumer.topic, key=cid.encode(), value=encoded[cid]) for cid in changed]
        await asyncio.gather(*futures)
        await conn.execute(
            f"INSERT INTO {_DELIVERIES} (consumer, citizen_id, digest) "
            "SELECT $1, c, d FROM unnest($2::text[], $3::bytea[]) AS k(c, d) "
            "ON CONFLICT (consumer, citizen_id) DO UPDATE SET digest = excluded.digest",
            consumer.consumer,
            changed,
            [digests[cid] for cid in changed],
        )
        self.delivered.labels(consumer.consumer).inc(len(changed))
