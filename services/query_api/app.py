"""Composition root of the query API: settings → engine and connection lease, authenticator, metrics, routers.

Nothing connects at import time or in ``create_app``; the lifespan creates the engine, and connections are
opened on first use.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request
from opentelemetry.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from events import ACCESS_LOG_TOPIC, DEAD_LETTER_TOPIC
from projections.resident.tables import DEFAULT_SCHEMA, safe_schema
from services import telemetry
from services.access_log.database import AccessLogSink, AccessLogWriter
from services.access_log.topic import AccessLogRelay, RelayBatch, TopicAccessLog
from services.db import roles as db_roles
from services.db.engine import make_engine
from services.grants import Grant, find_grant
from services.http.docs import serve_docs
from services.http.metrics import RequestLatency
from services.kafka.auth import QUERY_API, client_options, durable_producer
from services.kafka.principals import ACCESS_LOG_GROUP
from services.query_api.audit_key import audit_key_router
from services.query_api.auth import Authenticator
from services.query_api.citizens import citizens_router
from services.query_api.context import QueryApiContext
from services.query_api.db import ConnectionLease, DatabaseUnavailableError
from services.query_api.eligibility import router as eligibility_router
from services.query_api.errors import database_unavailable_response, install_error_handlers
from services.query_api.fast_lane import ResidentReadLane, resident_route
from services.query_api.metrics import QueryApiMetrics
from services.query_api.refusals import RefusalLog
from services.query_api.routes import operations, router
from services.settings import Settings, get_settings
from services.workers import start_worker

__all__ = ["create_app"]

DESCRIPTION = """\
Read access to the unified resident view for downstream services (CONTRACT §7).

Every request carries `Authorization: Bearer <consumer token>` and `X-Purpose: <purpose code>`; the answer holds
only the sections the consumer's grant allows for that purpose. Every successful read of a resident is recorded,
durably, in the resident's hash-chained access log before the answer is sent. Errors are
`{"error": {"code", "message", "details"}}`.
"""


ACCESS_LOG_FLUSHES = 2
"""Access-log transactions in flight at once (each commits every read queued when it started)."""
PRIMARY_CONNECTIONS = 4
"""Connections to the primary when reads go to a standby: citizens' own reads, statistics, refusals."""


def access_log_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer of the access-log topic and the relay's dead letters, as the query API's principal."""
    return durable_producer(settings, QUERY_API, client_id="renkou-query-api")


def access_log_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The relay's consumer: its offsets live in PostgreSQL with the entries; Kafka's are a hint (lag, fallback)."""
    return AIOKafkaConsumer(
        **client_options(settings, QUERY_API),
        group_id=settings.topic_namespace + ACCESS_LOG_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # A fetch waits for 64 KiB or 100 ms, whichever comes first: a few fetches a second rather than one per
        # read, for at most 100 ms more before an entry reaches the chains.
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=100,
        client_id="renkou-query-api-relay",
    )


def _count_relayed(metrics: QueryApiMetrics, partition: int, done: RelayBatch, lag: int | None) -> None:
    metrics.relayed.labels("chained").inc(done.chained)
    metrics.relayed.labels("skipped").inc(done.skipped)
    metrics.relayed.labels("rejected").inc(len(done.rejected))
    metrics.relayed.labels("lost").inc(done.gap)
    if lag is not None:
        metrics.relay_lag.labels(str(partition)).set(lag)


def create_worker_app() -> FastAPI:
    """uvicorn's factory in each worker process of ``python -m services.query_api`` (``services.workers``)."""
    start_worker()
    app = create_app()
    gc.freeze()  # see __main__: what lives as long as the process stays out of full collections
    return app


@dataclass(frozen=True)
class _Connections:
    """The query API's connections to PostgreSQL: for reads, for writes, for the access-log writer alone."""

    reads: ConnectionLease
    writes: ConnectionLease
    access_log: ConnectionLease
    engines: tuple[AsyncEngine, ...]

    async def close(self) -> None:
        for each in {id(x): x for x in (self.reads, self.writes, self.access_log)}.values():
            await each.close()
        for engine in self.engines:
            await engine.dispose()


def _connections(settings: Settings, *, pool_size: int, access_log_timeout: float) -> _Connections:
    """Engines and leases, connecting to nothing yet: reads and writes share the primary's engine, or reads go to
    a standby when the access log goes through Kafka; the access-log writer always has connections of its own."""
    engine = make_engine(
        db_roles.url_for(settings, db_roles.QUERY_API),
        pool_size=pool_size + ACCESS_LOG_FLUSHES,
        application_name="renkou-query-api",
        # The server gives up waiting for a chain head's lock before the API gives up on the statement: an
        # entry whose read was answered 503 must never commit a moment later, once the lock is free.
        server_settings={"lock_timeout": f"{int(access_log_timeout * 800)}ms"},
    )
    # The access-log writer's own connections: requests holding theirs while they wait for the commit can
    # never take the writer's.
    log_lease = ConnectionLease(engine, ACCESS_LOG_FLUSHES)
    if settings.access_log != "kafka":
        lease = ConnectionLease(engine, pool_size)
        return _Connections(lease, lease, log_lease, (engine,))
    # Reads go to the standby (or wherever RENKOU_READ_DATABASE_URL points) in read-only transactions: not one of
    # them can write, on a primary either. What writes (citizens' own reads, statistics' records, refusals, the
    # relay) keeps a few connections to the primary.
    read_engine = make_engine(
        db_roles.url_for(settings, db_roles.QUERY_API, reads=True),
        pool_size=pool_size,
        application_name="renkou-query-api-reads",
        server_settings={"default_transaction_read_only": "on"},
    )
    return _Connections(
        ConnectionLease(read_engine, pool_size),
        ConnectionLease(engine, PRIMARY_CONNECTIONS),
        log_lease,
        (engine, read_engine),
    )


async def _start_access_log(
    settings: Settings, metrics: QueryApiMetrics, connections: _Connections, *, entry_timeout: float
) -> tuple[AccessLogSink, AccessLogRelay | None]:
    """Where reads are recorded: PostgreSQL's access log directly, or the access-log topic with the relay that
    appends it to PostgreSQL (CONTRACT §13), started."""
    if settings.access_log != "kafka":
        writer = AccessLogWriter(
            connections.access_log.connection, timeout=entry_timeout, max_flushes=ACCESS_LOG_FLUSHES
        )
        return writer, None
    topic = settings.topic_namespace + ACCESS_LOG_TOPIC
    topic_log = TopicAccessLog(lambda: access_log_producer(settings), topic, timeout=entry_timeout)
    await topic_log.start()
    relay = AccessLogRelay(
        lambda: access_log_consumer(settings),
        lambda: access_log_producer(settings),
        connections.access_log.connection,
        topic=topic,
        dead_letter_topic=settings.topic_namespace + DEAD_LETTER_TOPIC,
        on_batch=lambda partition, done, lag: _count_relayed(metrics, partition, done, lag),
    )
    relay.start()
    return topic_log, relay


@asynccontextmanager
async def _running(
    settings: Settings,
    metrics: QueryApiMetrics,
    *,
    pool_size: int,
    access_log_timeout: float,
    grant_cache_ttl: float,
    schema: str,
) -> AsyncIterator[QueryApiContext]:
    """What the query API holds while it serves: its connections (to the primary, and to a standby when the
    access log goes through Kafka), the access-log writer or topic with its relay, the refusal log, the grant
    cache; all stopped and closed when it stops."""
    connections = _connections(settings, pool_size=pool_size, access_log_timeout=access_log_timeout)

    async def lookup(token: str) -> Grant | None:
        async with connections.reads.connection() as conn:
            return await find_grant(conn, token)

    try:
        access_log, relay = await _start_access_log(settings, metrics, connections, entry_timeout=access_log_timeout)
    except BaseException:
        await connections.close()  # the engines too: a failed start leaves no pool behind
        raise
    refusals = RefusalLog(connections.writes.connection, on_drop=metrics.refusals_dropped.inc)
    context = QueryApiContext(
        lease=connections.reads,
        auth=Authenticator(lookup, ttl=grant_cache_ttl),
        metrics=metrics,
        schema=schema,
        access_log=access_log,
        refusals=refusals,
        primary=connections.writes,
    )
    refusals.start()
    try:
        yield context
    finally:
        if relay is not None:
            await relay.stop()
        if isinstance(access_log, TopicAccessLog):
            await access_log.stop()
        await refusals.stop()
        await connections.close()


def create_app(
    settings: Settings | None = None,
    *,
    pool_size: int = 8,
    access_log_timeout: float = 2.0,
    grant_cache_ttl: float = 5.0,
    schema: str = DEFAULT_SCHEMA,
    fast_lane: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The query API for ``settings``.

    ``pool_size`` database connections at most; an access-log write that does not commit within
    ``access_log_timeout`` seconds refuses the read (503); grants are cached for ``grant_cache_ttl`` seconds
    (revocations still apply at once to every read, see ``services.query_api.auth``); ``schema`` is the
    projection schema read; ``fast_lane`` serves single-resident reads before FastAPI's routing
    (``services.query_api.fast_lane``; same answers, less CPU).
    """
    settings = settings or get_settings()
    safe_schema(schema)
    metrics = QueryApiMetrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(
            settings,
            metrics,
            pool_size=pool_size,
            access_log_timeout=access_log_timeout,
            grant_cache_ttl=grant_cache_ttl,
            schema=schema,
        ) as context:
            app.state.renkou = context
            yield

    app = FastAPI(
        title="renkou query API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    serve_docs(app)
    install_error_handlers(app)

    @app.exception_handler(DatabaseUnavailableError)
    async def database_unavailable(request: Request, exc: DatabaseUnavailableError) -> Response:
        return database_unavailable_response(exc)

    app.include_router(router)
    app.include_router(eligibility_router)
    app.include_router(operations)
    app.include_router(audit_key_router(settings))
    app.include_router(citizens_router(settings))
    if fast_lane:
        app.add_middleware(ResidentReadLane, route=resident_route())
    app.add_middleware(RequestLatency, histogram=metrics.latency)
    # A span for every request (the fast lane's included): the instrumentation wraps the whole stack.
    telemetry.instrument_fastapi(app, telemetry.tracer_provider("renkou-query-api", tracer_provider))
    return app
