"""Publishing anchors: the projector's minute-by-minute task, and one-off anchors for ``swap`` and operators.

One anchor at a time across every process (a PostgreSQL advisory lock): the projector's workers each run the
task, and whichever holds the lock when the interval has passed builds the anchor; the others find it recent.

Before it builds, the service reconciles the database with Kafka: the anchor kept in ``audit_anchor_latest``
must verify with our key and be the latest one on the topic (or the next, not yet published — it is published
first). An anchored state older than the topic's, or one that does not verify, is not built upon: the service
logs why and anchors nothing until an operator looked (``renkou audit verify`` names the problem).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.resident.tables import DEFAULT_SCHEMA
from services.anchor import builder
from services.anchor.keys import anchor_key_path, ensure_anchor_key, load_private_key
from services.anchor.record import AnchorFormatError, SignedAnchor, parse_anchor
from services.anchor.topic import Published, anchor_topic, publish_anchor, read_anchors
from services.db import audit_tables
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.kafka import auth as kafka_auth
from services.retry import GaveUpError, RetryPolicy, any_error
from services.settings import Settings

log = logging.getLogger("renkou.anchor")


@dataclass
class AnchorOutcome:
    """What one attempt did: ``published``, or why not (``unchanged``, ``recent``, ``busy``, ``refused``)."""

    status: str
    message: str
    signed: SignedAnchor | None = None
    where: Published | None = None
    build_ms: float = 0.0
    advances: dict[str, builder.Advance] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        return self.status == "published"


class AnchorRefusedError(Exception):
    """The database's anchored state cannot be built upon (see the message)."""


class AnchorService:
    """Builds, signs and publishes anchors of the projection in ``schema`` and of the access log."""

    def __init__(
        self,
        settings: Settings,
        *,
        private_key: Ed25519PrivateKey,
        producer: AIOKafkaProducer | None = None,
        schema: str = DEFAULT_SCHEMA,
        application_name: str = "renkou-anchor",
        database_role: str = db_roles.PROJECTOR,
        kafka_principal: str = kafka_auth.PROJECTOR,
    ) -> None:
        """``database_role`` / ``kafka_principal``: who it acts as — the projector's role and principal in the
        projector; the owner and the operator's principal in ``renkou swap`` and ``renkou audit anchor``."""
        self.settings = settings
        self.database_role = database_role
        self.kafka_principal = kafka_principal
        self.key = private_key
        self.public_key = private_key.public_key()
        self.schema = schema
        self.topic = anchor_topic(settings.topic_namespace)
        self.interval_s = settings.audit_anchor_interval_s
        # A failed anchor is tried again with the one policy's backoff until the next one is due.
        self._retry = RetryPolicy(deadline_s=self.interval_s, max_wait_s=min(30.0, self.interval_s))
        self.application_name = application_name
        self._producer = producer
        self._own_producer = producer is None
        self._consumer: AIOKafkaConsumer | None = None
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one attempt at a time within this process
        self._last: SignedAnchor | None = None  # the latest anchor this process published or found on Kafka

    @classmethod
    def from_settings(
        cls, settings: Settings, producer: AIOKafkaProducer | None = None, *, create_key: bool = True, **kwargs: str
    ) -> AnchorService:
        """The service with the key from ``settings``; ``create_key``: create it when missing (as ``renkou up``
        does — the projector), else ``AnchorKeyError`` (an operator's command must not mint a key of its own)."""
        path = anchor_key_path(settings)
        key = ensure_anchor_key(path) if create_key else load_private_key(path)
        return cls(settings, private_key=key, producer=producer, **kwargs)

    # --- connections ----------------------------------------------------------------------------------------------
    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                asyncpg_dsn(db_roles.url_for(self.settings, self.database_role)),
                timeout=10,
                server_settings={"application_name": self.application_name},
            )
        return self._conn

    async def _kafka(self) -> tuple[AIOKafkaProducer, AIOKafkaConsumer]:
        if self._producer is None:
            producer = kafka_auth.durable_producer(self.settings, self.kafka_principal, client_id="renkou-anchor")
            await producer.start()
            self._producer = producer
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **kafka_auth.client_options(self.settings, self.kafka_principal),
                group_id=None,
                enable_auto_commit=False,
                client_id="renkou-anchor",
            )
            await consumer.start()
            self._consumer = consumer
        return self._producer, self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._own_producer and self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    # --- one anchor -----------------------------------------------------------------------------------------------
    async def latest_on_kafka(self) -> SignedAnchor | None:
        """The highest anchor on the topic that our key signed (others are logged and ignored)."""
        _, consumer = await self._kafka()
        best: SignedAnchor | None = None
        for published in await read_anchors(consumer, self.topic):
            try:
                signed = parse_anchor(published.value)
            except AnchorFormatError as exc:
                log.warning("%s is not an anchor (%s); ignored", published.where(), exc)
                continue
            problem = signed.signature_problem(self.public_key)
            if problem is not None:
                log.warning("anchor at %s: %s; ignored", published.where(), problem)
                continue
            if best is None or signed.anchor.seq > best.anchor.seq:
                best = signed
        return best

    async def _reconcile(self, conn: asyncpg.Connection) -> SignedAnchor | None:
        """The anchor to build upon (``None``: the first one), after publishing a stored one Kafka lacks."""
        stored_row = await builder.stored_anchor(conn)
        last = self._last
        if last is not None and stored_row is not None and stored_row.record == last.to_bytes():
            return last  # the one this process published last: Kafka's end is known without reading it
        on_kafka = await self.latest_on_kafka()
        stored: SignedAnchor | None = None
        if stored_row is not None:
            try:
                stored = parse_anchor(stored_row.record)
            except AnchorFormatError as exc:
                raise AnchorRefusedError(f"the anchor kept in the database is not an anchor ({exc})") from exc
            problem = stored.signature_problem(self.public_key)
            if problem is not None:
                raise AnchorRefusedError(f"the anchor kept in the database does not verify: {problem}")
        k = on_kafka.anchor.seq if on_kafka else 0
        s = stored.anchor.seq if stored else 0
        if s < k:
            raise AnchorRefusedError(
                f"the anchored heads in the database belong to anchor #{s or 'none'}, but #{k} is on {self.topic}: "
                "they were rolled back or deleted; not anchoring over them (`renkou audit verify` names what broke)"
            )
        if s == k:
            if stored is not None and on_kafka is not None and stored.to_bytes() != on_kafka.to_bytes():
                raise AnchorRefusedError(f"anchor #{s} in the database is not the one on {self.topic}")
            if stored is not None and stored_row is not None and not stored_row.published:
                await builder.mark_published(conn, s)
            self._last = stored
            return stored
        if s > k + 1 or stored is None:
            raise AnchorRefusedError(f"the database holds anchor #{s} but {self.topic} ends at #{k or 'none'}")
        if on_kafka is not None and stored.anchor.previous != on_kafka.digest():
            raise AnchorRefusedError(f"anchor #{s} in the database does not follow #{k} on {self.topic}")
        if on_kafka is None and s != 1:
            raise AnchorRefusedError(f"anchor #{s} in the database follows anchors that are not on {self.topic}")
        producer, _ = await self._kafka()
        where = await publish_anchor(producer, self.topic, stored)  # built, committed, never published: now
        await builder.mark_published(conn, s)
        log.warning("anchor #%d had not reached Kafka; published it now at %s", s, where.where())
        self._last = stored
        return stored

    async def _unchanged(self, conn: asyncpg.Connection, latest: SignedAnchor) -> bool:
        """Cheap signs that no chain moved since ``latest``: the same checkpoints and access-log totals."""
        anchor = latest.anchor
        if anchor.held_total or anchor.schema != self.schema:
            return False
        if await builder.checkpoints(conn, self.schema) != anchor.checkpoints:
            return False
        log = audit_tables.ACCESS_LOG
        row = await conn.fetchrow(
            "SELECT count(*) AS chains, coalesce(sum(chain_seq), 0) AS links "
            f"FROM {log.heads_in(self.schema)} WHERE {log.started}"
        )
        assert row is not None
        access = anchor.logs[builder.ACCESS_LOG]
        return (row["chains"], row["links"]) == (access.chains, access.links)

    async def anchor_once(
        self, reason: str, *, force: bool = False, wait_lock_s: float = 0.0, rebase: bool = False
    ) -> AnchorOutcome:
        """Build, sign, store and publish one anchor, unless nothing moved (``force`` anchors anyway).

        ``wait_lock_s``: how long to wait while another process builds one (0: give up at once, ``busy``).
        ``rebase``: anchor every chain as it stands, after the latest anchor on Kafka, whatever the database
        keeps (``renkou audit anchor --rebase``, after a restore: the one way past a refused state).
        """
        async with self._lock:
            conn = await self._connection()
            deadline = time.monotonic() + wait_lock_s
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", builder.LOCK_KEY):
                if time.monotonic() >= deadline:
                    return AnchorOutcome("busy", "another process is building an anchor")
                await asyncio.sleep(0.1)
            try:
                if rebase:
                    return await self._build(conn, "rebase", None, rebase_after=await self.latest_on_kafka())
                return await self._anchor_locked(conn, reason, force=force)
            finally:
                # A broken session has released the lock with itself.
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", builder.LOCK_KEY)

    async def _anchor_locked(self, conn: asyncpg.Connection, reason: str, *, force: bool) -> AnchorOutcome:
        try:
            latest = await self._reconcile(conn)
        except AnchorRefusedError as exc:
            return AnchorOutcome("refused", str(exc))
        now = datetime.now(UTC)
        if not force and latest is not None:
            age = (now - latest.anchor.anchored_at).total_seconds()
            if reason == "interval" and age < self.interval_s * 0.9:
                return AnchorOutcome("recent", f"anchor #{latest.anchor.seq} is {age:.0f} s old", latest)
            if await self._unchanged(conn, latest):
                return AnchorOutcome("unchanged", f"no chain moved since anchor #{latest.anchor.seq}", latest)
        return await self._build(conn, reason, latest)

    async def _build(
        self,
        conn: asyncpg.Connection,
        reason: str,
        latest: SignedAnchor | None,
        *,
        rebase_after: SignedAnchor | None = None,
    ) -> AnchorOutcome:
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with conn.transaction(isolation="repeatable_read"):
            anchor, advances = await builder.build_anchor(
                conn, schema=self.schema, previous=latest, reason=reason, now=now, rebase_after=rebase_after
            )
            signed = anchor.sign(self.key)
            await builder.store_anchor(conn, signed)
        build_ms = (time.perf_counter() - started) * 1000
        producer, _ = await self._kafka()
        where = await publish_anchor(producer, self.topic, signed)
        await builder.mark_published(conn, anchor.seq)
        self._last = signed
        moved = ", ".join(f"{log_} {a.moved:,}" for log_, a in advances.items())
        if anchor.held_total:
            log.error(
                "anchor #%d holds %d chains at their anchored heads: they no longer extend them (%s)",
                anchor.seq,
                anchor.held_total,
                "; ".join(f"{h.log} {h.citizen_id or 'bucket ' + str(h.bucket)}: {h.problem}" for h in anchor.held[:5]),
            )
        log.info(
            "anchor #%d (%s) at %s: chains moved: %s; built in %.0f ms",
            anchor.seq,
            reason,
            where.where(),
            moved,
            build_ms,
        )
        return AnchorOutcome("published", f"anchor #{anchor.seq} at {where.where()}", signed, where, build_ms, advances)

    # --- the projector's task -------------------------------------------------------------------------------------
    async def run(self, first_delay_s: float) -> None:
        """Anchor every ``interval_s`` (the first time after ``first_delay_s``) until cancelled: a failure is
        retried with the daemon policy, then logged with its cause and left to the next interval."""
        delay = first_delay_s
        while True:
            await asyncio.sleep(delay)
            delay = self.interval_s
            try:
                outcome: AnchorOutcome = await self._retry.retrying("anchoring", retryable=any_error)(
                    self._anchor_on_interval
                )
            except GaveUpError as exc:  # the last failure is logged here, with its cause
                log.error("no anchor this interval (%s); the next is due in %.0f s", exc, delay, exc_info=exc.last)
                continue
            if outcome.status == "refused":
                log.error("no anchor: %s", outcome.message)

    async def _anchor_on_interval(self) -> AnchorOutcome:
        try:
            return await self.anchor_once("interval")
        except Exception:
            await self._drop_connection()  # the next attempt starts from a fresh connection
            raise

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def start(self, first_delay_s: float = 5.0) -> None:
        """Anchor every ``interval_s`` in the background (the first time after ``first_delay_s``)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(min(first_delay_s, self.interval_s)), name="renkou-anchors")

    async def stop(self, final_reason: str | None = "shutdown") -> AnchorOutcome | None:
        """Stop the task; with ``final_reason``, anchor what moved since the last anchor first. Then close."""
        outcome = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            if final_reason is not None:
                try:
                    outcome = await self.anchor_once(final_reason, wait_lock_s=10.0)
                except Exception:
                    log.exception("the final anchor failed")
        finally:
            await self.close()
        return outcome
