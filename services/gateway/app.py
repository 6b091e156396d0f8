"""Composition root of the gateway: settings → engine, publisher, ingestor, the HTTP routes of
``services.gateway.routes`` (CONTRACT §7).

``create_app()`` builds everything and connects to nothing; connections open in the app's lifespan. Serve it
with ``python -m services.gateway`` (uvicorn on ``RENKOU_BIND_HOST``, ``/openapi.json``, ``/healthz``
(liveness), ``/readyz`` (PostgreSQL and Kafka answer), ``/metrics``).

Outages (``services.outages``) are answered 503 with ``Retry-After``, never 500; a request body is read only after
its token was checked, and never beyond its cap (``MAX_EVENT_BYTES``, ``MAX_BATCH_BYTES``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from services import telemetry
from services.db import roles as db_roles
from services.db.engine import make_engine
from services.gateway.errors import install_error_handlers
from services.gateway.ingest import Ingestor
from services.gateway.metrics import GatewayMetrics
from services.gateway.routes import Runtime, router
from services.http.docs import serve_docs
from services.http.metrics import RequestLatency
from services.kafka.auth import GATEWAY, credentials_for
from services.publisher import Publisher, PublishError
from services.settings import Settings, get_settings
from services.workers import start_worker

log = logging.getLogger("renkou.gateway")


def create_worker_app() -> FastAPI:
    """uvicorn's factory in each worker process of ``python -m services.gateway`` (``services.workers``)."""
    start_worker()
    return create_app()


def create_app(settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The gateway application for ``settings`` (the process's settings by default); its requests are traced to
    ``tracer_provider`` (or per ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``services.telemetry``)."""
    settings = settings or get_settings()
    metrics = GatewayMetrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            db_roles.url_for(settings, db_roles.GATEWAY), pool_size=8, application_name="renkou-gateway"
        )
        publisher = Publisher(
            settings.kafka_bootstrap,
            namespace=settings.topic_namespace,
            client_id="renkou-gateway",
            credentials=credentials_for(settings, GATEWAY),
        )
        try:
            await publisher.start()
        except PublishError as exc:
            # Serve anyway: requests answer 503 until Kafka answers, and the publisher connects on first use.
            log.warning("%s; requests will get 503 until it answers", exc)
        ingestor = Ingestor(engine, publisher, namespace=settings.topic_namespace, metrics=metrics)
        current = app.state.runtime = Runtime(ingestor, publisher)
        try:
            yield
        finally:
            app.state.runtime = None
            if current.connecting is not None:
                current.connecting.cancel()
            await publisher.stop()
            await engine.dispose()

    app = FastAPI(
        title="renkou gateway",
        version="1.0.0",
        summary="Departments publish population events; each is validated, fenced and on Kafka before the answer.",
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = None
    app.state.metrics = metrics
    serve_docs(app)
    install_error_handlers(app)
    app.add_middleware(RequestLatency, histogram=metrics.request_seconds)
    telemetry.instrument_fastapi(app, telemetry.tracer_provider("renkou-gateway", tracer_provider))
    app.include_router(router)
    return app


_DESCRIPTION = """
Department systems publish events here with `Authorization: Bearer <department token>`
(`renkou departments token DEPARTMENT` prints one).

* Every event goes through the one validation of the backbone (`events.parse_event`); a department may send only
  its own event types.
* An answer of 202 means Kafka acknowledged the event with acks=all; it is on the log, keyed by citizen ID.
* `event_id` is the idempotency key: the same event again is answered 200 with the original coordinates, other
  content under the same `event_id` 409. Retrying after a timeout or a 503 is always safe.
* Refused events also go to the dead-letter topic with their reason.
* Errors are `{"error": {"code", "message", "details": [{"field", "message"}]}}`.
"""
