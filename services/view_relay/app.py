"""Composition root of the view relay: settings → engine, producer, publisher loop, ``/healthz``, ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, generate_latest

from projections.resident.store import DEFAULT_SCHEMA
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.db.engine import make_engine
from services.kafka_auth import VIEW_RELAY, client_options
from services.settings import Settings, get_settings
from services.view_relay.publisher import ViewPublisher


def create_app(settings: Settings | None = None) -> FastAPI:
    """The relay for ``settings``; it connects when the app starts, not before."""
    settings = settings or get_settings()
    registry = CollectorRegistry()
    published = Counter(
        "renkou_view_relay_views_published", "Views published to the compacted view topic", registry=registry
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = db_roles.url_for(settings, db_roles.VIEW_RELAY)
        engine = make_engine(url, pool_size=2, application_name="renkou-view-relay")
        producer = AIOKafkaProducer(
            **client_options(settings, VIEW_RELAY), acks="all", enable_idempotence=True, linger_ms=10
        )
        await producer.start()
        publisher = ViewPublisher(
            engine=engine,
            producer=producer,
            schema=DEFAULT_SCHEMA,
            namespace=settings.topic_namespace,
            published=published,
            today=lambda: datetime.now(UTC).date(),
        )
        await publisher.start(asyncpg_dsn(url))
        try:
            yield
        finally:
            await publisher.stop()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="renkou view relay", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> bytes:
        return generate_latest(registry)

    return app
