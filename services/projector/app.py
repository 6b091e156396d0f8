"""Composition root of the projector: settings → broker, engine, producer, subscriber, HTTP routes.

``create_app()`` builds everything and connects to nothing; connections open in the app's startup hooks.
Serve it with ``python -m services.projector`` (uvicorn on ``RENKOU_BIND_HOST``, ``/healthz`` (liveness), ``/readyz``
(PostgreSQL and a Kafka broker answer), ``/metrics``, ``/asyncapi``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, HttpHandler, get
from faststream.asgi.types import Scope
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import make_asgi_app

from events import department_topics
from projections.resident.store import PostgresProjectionStore
from projections.resident.tables import DEFAULT_SCHEMA
from services import asyncapi, telemetry
from services.anchor.service import AnchorService
from services.db import roles as db_roles
from services.db.engine import make_engine
from services.http.readiness import READY_TIMEOUT_S, Check, check_readiness, postgresql
from services.kafka.auth import PROJECTOR, bootstrap_servers, credentials_for, durable_producer
from services.kafka.principals import PROJECTOR_GROUP
from services.projector.metrics import ProjectorMetrics
from services.projector.service import Projector, SeekToCheckpoints
from services.runtime import tune_gc_for_batches
from services.settings import Settings, get_settings
from services.workers import metrics_registry, start_worker

GROUP_ID = PROJECTOR_GROUP


async def _tolerant_parser(records: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser, made safe for headers that are not UTF-8: the batch must reach the dead-letter path."""
    try:
        return await original(records)
    except UnicodeDecodeError:
        cleaned = tuple(dataclasses.replace(r, headers=[(k, v) for k, v in r.headers if _is_utf8(v)]) for r in records)
        message = await original(cleaned)
        message.raw_message = records
        return message


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _raw_decoder(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    # The pipeline parses every record itself with events.parse_event; never let FastStream json-decode a
    # poison record by its content-type header and fail the batch.
    return [r.value for r in message.raw_message]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> AsgiResponse:
    return AsgiResponse(orjson.dumps(body), status, {"Content-Type": "application/json", **(headers or {})})


def _probes(broker: KafkaBroker, running: _Running) -> tuple[HttpHandler, HttpHandler]:
    """``/healthz`` (the process is up) and ``/readyz`` (PostgreSQL answers ``SELECT 1``, a Kafka broker answers
    the broker's cluster description; 503 naming what does not)."""

    @get(description="Liveness: the process is up, whatever PostgreSQL and Kafka do.")
    async def healthz(scope: Scope) -> AsgiResponse:
        return _json({"status": "ok"})

    async def kafka() -> None:
        if not await broker.ping(READY_TIMEOUT_S):
            raise ConnectionError("no Kafka broker answered")

    async def starting() -> None:
        raise ConnectionError("the projector is starting or stopping")

    @get(description="Readiness: PostgreSQL and Kafka answer (503 naming what does not).")
    async def readyz(scope: Scope) -> AsgiResponse:
        projector = running.projector
        database: Check = postgresql(projector.engine) if projector is not None else starting
        readiness = await check_readiness({"postgresql": database, "kafka": kafka})
        return _json(readiness.body(), readiness.status_code, readiness.headers)

    return healthz, readyz


def create_worker_app() -> AsgiFastStream:
    """uvicorn's factory in each worker process of ``python -m services.projector`` (``services.workers``)."""
    start_worker()
    app = create_app()
    tune_gc_for_batches()
    return app


class _Running:
    """What the projector holds while it runs, made by ``start`` and given back by ``stop``: the ``Projector``
    (its engine, producer and store) and the anchor service beside it."""

    def __init__(
        self, settings: Settings, metrics: ProjectorMetrics, tracing: TracerProvider | None, listener: SeekToCheckpoints
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tracing = tracing
        self.listener = listener
        self.projector: Projector | None = None
        self.anchors: AnchorService | None = None

    async def start(self) -> None:
        settings = self.settings
        engine = make_engine(
            db_roles.url_for(settings, db_roles.PROJECTOR), pool_size=4, application_name="renkou-projector"
        )
        producer = durable_producer(settings, PROJECTOR, linger_ms=5, client_id="renkou-projector")
        await producer.start()
        projector = Projector(
            engine=engine,
            producer=producer,
            store=PostgresProjectionStore(DEFAULT_SCHEMA),
            namespace=settings.topic_namespace,
            metrics=self.metrics,
            tracer_provider=self.tracing,
        )
        self.projector = self.listener.projector = projector
        # Signed anchors of every chain head (CONTRACT §10), on the side: a failure here never stops projecting.
        try:
            self.anchors = AnchorService.from_settings(settings, producer, application_name="renkou-anchor")
        except Exception:
            logging.getLogger("renkou.anchor").exception("no audit anchors: the signing key is unusable")
        else:
            self.anchors.start()

    async def stop(self) -> None:
        projector, self.projector = self.projector, None
        if projector is None:
            return
        anchors, self.anchors = self.anchors, None
        if anchors is not None:
            await anchors.stop()  # a last anchor over what moved since the previous one
        await projector.producer.stop()
        await projector.engine.dispose()

    async def handle(self, message: KafkaMessage) -> None:
        assert self.projector is not None, "a batch arrived before the projector started"
        await self.projector.handle(message)


def _broker(settings: Settings, metrics: ProjectorMetrics, tracing: TracerProvider | None) -> KafkaBroker:
    """The FastStream broker as the projector's principal, its records counted and (with ``tracing``) traced."""
    credentials = credentials_for(settings, PROJECTOR)
    middlewares: list[Any] = [KafkaPrometheusMiddleware(registry=metrics.registry, app_name="renkou-projector")]
    if tracing is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=tracing))
    return KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap),
        security=credentials.security() if credentials is not None else None,
        client_id="renkou-projector",
        log_level=logging.DEBUG,  # per-batch "Received/Processed" lines: debug only, metrics tell the rest
        middlewares=middlewares,
    )


def create_app(
    settings: Settings | None = None, *, max_records: int = 2000, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """The projector application for ``settings`` (the process's settings by default); its batches, and each
    event they apply in the event's own trace, are traced to ``tracer_provider`` (or per
    ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``services.telemetry``)."""
    settings = settings or get_settings()
    metrics = ProjectorMetrics.create()
    tracing = telemetry.tracer_provider("renkou-projector", tracer_provider)
    broker = _broker(settings, metrics, tracing)
    listener = SeekToCheckpoints()
    running = _Running(settings, metrics, tracing, listener)
    subscriber = broker.subscriber(
        *department_topics(settings.topic_namespace),
        batch=True,
        group_id=settings.topic_namespace + GROUP_ID,
        auto_offset_reset="earliest",
        max_records=max_records,
        batch_timeout_ms=200,
        # What the consumer buffers ahead is at most this per owned partition (plus one fetch response): with
        # 48 partitions, 4 MiB each let a worker hold ~200 MB of records it has not reached yet.
        max_partition_fetch_bytes=512 * 1024,
        fetch_max_bytes=8 * 1024 * 1024,
        ack_policy=AckPolicy.MANUAL,
        parser=_tolerant_parser,
        decoder=_raw_decoder,
        listener=listener,
        description="Department events folded into the unified resident view (exactly once, in PostgreSQL).",
    )

    @subscriber
    async def project_batch(message: KafkaMessage) -> None:
        await running.handle(message)

    listener.subscriber = subscriber
    healthz, readyz = _probes(broker, running)
    spec = orjson.dumps(asyncapi.document(settings.topic_namespace))

    @get(description="The AsyncAPI document of renkou's topics, with every payload's JSON Schema (CONTRACT §14).")
    async def asyncapi_json(scope: Scope) -> AsgiResponse:
        return AsgiResponse(spec, 200, {"Content-Type": "application/json"})

    return AsgiFastStream(
        broker,
        asgi_routes=[
            ("/metrics", make_asgi_app(metrics_registry(metrics.registry))),
            ("/healthz", healthz),
            ("/readyz", readyz),
            # Ours, not FastStream's generated one: its payloads would be the raw batch handler's (empty), and
            # its HTML page loads from a CDN.
            ("/asyncapi.json", asyncapi_json),
        ],
        on_startup=[running.start],
        after_shutdown=[running.stop],
    )
