"""Composition root of the view relay: settings → engine, producer, publisher loop, ``/healthz`` (liveness),
``/readyz`` (PostgreSQL and Kafka answer), ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter

from events import RESIDENT_VIEW_TOPIC
from projections.resident.tables import DEFAULT_SCHEMA
from services.clock import today_in_china
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.db.engine import make_engine
from services.http.docs import serve_docs
from services.http.readiness import Readiness, check_readiness, kafka_metadata, postgresql
from services.infra.topics import TopicSpec, ensure_topics, load_topics, replicas_of
from services.kafka.auth import VIEW_RELAY, credentials_for, durable_producer
from services.settings import Settings, get_settings
from services.view_relay.consumer_topics import ConsumerTopics
from services.view_relay.publisher import BATCH, ViewPublisher
from services.workers import metrics_response


@dataclass(frozen=True)
class RelayMetrics:
    """The relay's counters, in a registry of its own (one per app)."""

    registry: CollectorRegistry
    published: Counter
    delivered: Counter

    @classmethod
    def create(cls) -> RelayMetrics:
        registry = CollectorRegistry()
        published = Counter(
            "renkou_view_relay_views_published", "Views published to the compacted view topic", registry=registry
        )
        delivered = Counter(
            "renkou_view_relay_consumer_views_delivered",
            "Views delivered to consumers' own view topics (each recorded in the access log first)",
            ["consumer"],
            registry=registry,
        )
        return cls(registry, published, delivered)


async def ensure_consumer_topic(settings: Settings, topic: str) -> None:
    """Create a consumer's view topic as the main view topic is declared (compacted, same partitions), with as many
    replicas as the main one has on this cluster (three on a cluster: one would refuse acks=all writes under
    ``min.insync.replicas=2``)."""
    (main,) = [spec for spec in load_topics() if spec.name == RESIDENT_VIEW_TOPIC]
    credentials = credentials_for(settings, VIEW_RELAY)
    live = await replicas_of(settings.kafka_bootstrap, settings.topic_namespace + RESIDENT_VIEW_TOPIC, credentials)
    spec = TopicSpec(topic, main.partitions, live or main.replication_factor, dict(main.config))
    await ensure_topics(settings.kafka_bootstrap, [spec], credentials)


router = APIRouter()


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: PostgreSQL and Kafka answer", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    """200 when PostgreSQL answers ``SELECT 1`` and a Kafka broker the producer's metadata request, each within
    2 s; 503 naming what does not."""
    publisher: ViewPublisher | None = request.app.state.publisher
    readiness = (
        Readiness.starting("postgresql", "kafka")
        if publisher is None
        else await check_readiness(
            {"postgresql": postgresql(publisher.engine), "kafka": kafka_metadata(publisher.producer.client)}
        )
    )
    return readiness.response()


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    relay_metrics: RelayMetrics = request.app.state.metrics
    return metrics_response(relay_metrics.registry)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The relay for ``settings``; it connects when the app starts, not before."""
    settings = settings or get_settings()
    relay_metrics = RelayMetrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = db_roles.url_for(settings, db_roles.VIEW_RELAY)
        engine = make_engine(url, pool_size=2, application_name="renkou-view-relay")
        producer = durable_producer(settings, VIEW_RELAY, linger_ms=10)
        await producer.start()
        publisher = ViewPublisher(
            engine=engine,
            producer=producer,
            schema=DEFAULT_SCHEMA,
            namespace=settings.topic_namespace,
            published=relay_metrics.published,
            today=today_in_china,
            consumer_topics=ConsumerTopics(
                producer=producer,
                ensure_topic=partial(ensure_consumer_topic, settings),
                namespace=settings.topic_namespace,
                schema=DEFAULT_SCHEMA,
                delivered=relay_metrics.delivered,
                batch=BATCH,
            ),
        )
        await publisher.start(asyncpg_dsn(url))
        app.state.publisher = publisher
        try:
            yield
        finally:
            app.state.publisher = None
            await publisher.stop()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="renkou view relay", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.publisher = None
    app.state.metrics = relay_metrics
    serve_docs(app)
    app.include_router(router)
    return app
