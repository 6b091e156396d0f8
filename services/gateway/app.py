"""Composition root of the gateway: settings → engine, publisher, ingestor, HTTP routes (CONTRACT §7).

``create_app()`` builds everything and connects to nothing; connections open in the app's lifespan. Serve it
with ``python -m services.gateway`` (uvicorn on ``RENKOU_BIND_HOST``, ``/openapi.json``, ``/healthz``
(liveness), ``/readyz`` (PostgreSQL and Kafka answer), ``/metrics``).

Outages (``services.outages``) are answered 503 with ``Retry-After``, never 500; a request body is read only after
its token was checked, and never beyond its cap (``MAX_EVENT_BYTES``, ``MAX_BATCH_BYTES``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Request
from fastapi.responses import Response
from opentelemetry.trace import TracerProvider

from events import DEPARTMENTS, EVENT_TYPES
from events.examples import example_event
from services import telemetry
from services.api_docs import serve_docs
from services.db import roles as db_roles
from services.db.engine import driver_connection, make_engine
from services.gateway.auth import bearer, department_of_token
from services.gateway.errors import (
    ERROR_RESPONSES,
    Accepted,
    ApiError,
    BatchResponse,
    ErrorResponse,
    install_error_handlers,
    json_response,
    retry_later,
)
from services.gateway.ingest import Ingestor, NotJson, Result, Submitted
from services.gateway.metrics import GatewayMetrics
from services.http_errors import field_details
from services.http_metrics import RequestLatency
from services.kafka_auth import GATEWAY, credentials_for
from services.outages import outages_of
from services.publisher import Publisher, PublishError
from services.readiness import check_readiness, kafka_metadata, postgresql
from services.request_body import read_body
from services.settings import Settings, get_settings
from services.workers import metrics_response, start_worker

log = logging.getLogger("renkou.gateway")

MAX_BATCH_EVENTS = 1000
MAX_EVENT_BYTES = 1024 * 1024
"""The body of ``POST /v1/events``: one event, at most what Kafka takes in one record by default (1 MiB)."""
MAX_BATCH_BYTES = 16 * 1024 * 1024
"""The body of ``POST /v1/events:batch``: 1000 events of 16 KiB on average. A department's events are well under
2 KiB each (the simulator's average about 0.7 KiB), so a full batch is ~2 MiB; the cap is generous on purpose,
while the per-record size rule (``events``) decides what one event may be."""


@dataclass
class _Runtime:
    ingestor: Ingestor
    publisher: Publisher
    connecting: asyncio.Task[None] | None = None


async def _connect(publisher: Publisher) -> None:
    try:
        await publisher.start()
    except PublishError as exc:
        log.warning("%s", exc)


def create_worker_app() -> FastAPI:
    """uvicorn's factory in each worker process of ``python -m services.gateway`` (``services.workers``)."""
    start_worker()
    return create_app()


def create_app(settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The gateway application for ``settings`` (the process's settings by default); its requests are traced to
    ``tracer_provider`` (or per ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``services.telemetry``)."""
    settings = settings or get_settings()
    metrics = GatewayMetrics.create()
    holder: dict[str, _Runtime] = {}

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
        current = holder["runtime"] = _Runtime(ingestor, publisher)
        try:
            yield
        finally:
            holder.pop("runtime", None)
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
    serve_docs(app)
    install_error_handlers(app)
    app.add_middleware(RequestLatency, histogram=metrics.request_seconds)
    telemetry.instrument_fastapi(app, telemetry.tracer_provider("renkou-gateway", tracer_provider))

    def runtime() -> _Runtime:
        found = holder.get("runtime")
        if found is None:
            raise ApiError(503, "starting", "the gateway is starting or stopping")
        return found

    async def authenticate(authorization: str | None) -> str:
        # Before the body is read: an unauthenticated request is refused without reading it. An unavailable
        # PostgreSQL is answered 503 by the outage handler (services.gateway.errors).
        token = bearer(authorization)
        with outages_of("postgresql"):
            async with driver_connection(runtime().ingestor.engine) as conn:
                return await department_of_token(conn, token)

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=None,
        summary="Publish one event",
        responses={
            202: {"model": Accepted, "description": "Published: Kafka acknowledged it (acks=all)."},
            200: {"model": Accepted, "description": "This event_id was accepted before with the same content."},
            403: {"model": ErrorResponse, "description": "The event type belongs to another department."},
            409: {"model": ErrorResponse, "description": "This event_id was accepted before with other content."},
            **ERROR_RESPONSES,
        },
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT}}}},
    )
    async def publish_event(
        request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> Response:
        """One event (CONTRACT §2): 202 once Kafka acknowledged it, 200 for a repeat, 4xx naming every failed
        rule. Rejected events also go to the dead-letter topic with their reason."""
        department = await authenticate(authorization)
        body = await read_body(request, MAX_EVENT_BYTES)
        result = (await runtime().ingestor.ingest(department, [Submitted(body, _decode(body))]))[0]
        if result.error is not None:
            return json_response({"error": result.error}, result.status, retry_later(result.status))
        return json_response(result.coordinates(), result.status)

    @app.post(
        "/v1/events:batch",
        status_code=200,
        response_model=None,
        summary="Publish up to 1000 events",
        responses={
            200: {"model": BatchResponse, "description": "Every event was accepted (202) or a repeat (200)."},
            207: {"model": BatchResponse, "description": "Some events were refused; see each result."},
            **ERROR_RESPONSES,
        },
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BATCH}}}},
    )
    async def publish_batch(
        request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> Response:
        """``{"events": [...]}`` (at most 1000): one result per event, in order; one bad event does not sink the
        others. 200 when all were accepted, 207 when some were refused, 503 when Kafka or PostgreSQL did not
        take some (send the whole batch again: repeats are answered 200)."""
        department = await authenticate(authorization)
        body = await read_body(request, MAX_BATCH_BYTES)
        events = _batch_events(_decode(body))
        metrics.batch_size.observe(len(events))
        results = await runtime().ingestor.ingest(department, [Submitted(_encode(e), e) for e in events])
        status = _batch_status(results)
        return json_response(_batch_body(results), status, retry_later(status))

    @app.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> Response:
        """200 while the process serves, whatever PostgreSQL and Kafka do (``/readyz`` says whether they answer)."""
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        summary="Readiness: PostgreSQL and Kafka answer",
        responses={503: {"description": "Not ready: `unavailable` names the dependencies that do not answer."}},
    )
    async def readyz() -> Response:
        """200 ``{"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}`` when PostgreSQL answers
        ``SELECT 1`` and a Kafka broker answers the producer's metadata request, each within 2 s; 503 naming what
        does not otherwise. A producer that is not connected is (re)connected in the background."""
        current = holder.get("runtime")
        if current is None:
            starting = {"postgresql": "unavailable (starting)", "kafka": "unavailable (starting)"}
            body = {"status": "unavailable", "checks": starting, "unavailable": list(starting)}
            return json_response(body, 503, retry_later(503))
        publisher = current.publisher

        async def kafka() -> None:
            if not publisher.started:
                # Connect in the background: a probe must answer within its own short timeout, whatever Kafka does.
                if current.connecting is None or current.connecting.done():
                    current.connecting = asyncio.create_task(_connect(publisher))
                raise ConnectionError("the producer is not connected; connecting")
            await kafka_metadata(publisher.producer.client)()

        readiness = await check_readiness({"postgresql": postgresql(current.ingestor.engine), "kafka": kafka})
        return json_response(readiness.body(), readiness.status_code, readiness.headers or None)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        # Several workers (see __main__): every worker's counters, whichever worker answers.
        return metrics_response(metrics.registry)

    return app


# --- request bodies -------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _decode(body: bytes) -> Any:
    """The JSON value of ``body`` or ``NotJson``; orjson first, the standard library for what orjson refuses
    but JSON allows (integers beyond 64 bits), so that only truly malformed bodies are refused as a whole."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            return NotJson(str(exc) or type(exc).__name__)


def _encode(value: Any) -> bytes:
    """One event of a batch as JSON bytes again (what ``parse_event`` reads and the dead-letter topic keeps)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _batch_events(data: Any) -> list[Any]:
    if isinstance(data, NotJson):
        raise ApiError(
            400, "malformed_json", f"the body is not JSON: {data.reason}", field_details([("", data.reason)])
        )
    if not isinstance(data, dict):
        raise ApiError(
            422, "invalid_batch", 'the body must be an object {"events": [...]}', field_details([("", "not an object")])
        )
    problems = [(k, "unknown field (not part of the schema)") for k in data if k != "events"]
    events = data.get("events")
    if events is None:
        problems.append(("events", "field required"))
    elif not isinstance(events, list):
        problems.append(("events", "must be an array of events"))
    if problems:
        raise ApiError(422, "invalid_batch", 'the body must be {"events": [...]}', field_details(problems))
    assert isinstance(events, list)
    if len(events) > MAX_BATCH_EVENTS:
        message = f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(events)}: split it"
        raise ApiError(413, "batch_too_large", message, field_details([("events", message)]))
    return events


def _batch_status(results: list[Result]) -> int:
    if any(r.status == 503 for r in results):
        return 503
    if all(r.status in (200, 202) for r in results):
        return 200
    return 207


def _batch_body(results: list[Result]) -> dict[str, Any]:
    accepted = sum(r.status == 202 for r in results)
    duplicates = sum(r.status == 200 for r in results)
    return {
        "results": [r.as_dict() for r in results],
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": len(results) - accepted - duplicates,
    }


# --- OpenAPI --------------------------------------------------------------------------------------------------

_UUID = {"type": "string", "format": "uuid"}
_TIMESTAMP = {"type": "string", "format": "date-time", "description": "RFC 3339 with offset"}
_EVENT: dict[str, Any] = {
    "title": "Event",
    "type": "object",
    "description": (
        "The event envelope (CONTRACT §2). The payload's schema depends on event_type and schema_version: "
        "events/schemas/<event_type>/v<N>.json in the repository, or `renkou schemas export`."
    ),
    "required": [
        "event_id",
        "event_type",
        "schema_version",
        "citizen_id",
        "occurred_at",
        "recorded_at",
        "source",
        "payload",
    ],
    "properties": {
        "event_id": _UUID,
        "event_type": {"type": "string", "enum": sorted(EVENT_TYPES)},
        "schema_version": {"type": "integer", "minimum": 1},
        "citizen_id": {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$"},
        "occurred_at": _TIMESTAMP,
        "recorded_at": _TIMESTAMP,
        "source": {
            "type": "object",
            "required": ["department", "system", "region_code"],
            "properties": {
                "department": {"type": "string", "enum": list(DEPARTMENTS)},
                "system": {"type": "string", "minLength": 1, "maxLength": 64},
                "region_code": {"type": "string", "pattern": "^[0-9]{6}$"},
            },
            "additionalProperties": False,
        },
        "correlation_id": _UUID,
        "causation_id": _UUID,
        "payload": {"type": "object"},
    },
    "additionalProperties": False,
    "example": example_event("birth.registered"),
}
_BATCH: dict[str, Any] = {
    "title": "EventBatch",
    "type": "object",
    "required": ["events"],
    "properties": {"events": {"type": "array", "maxItems": MAX_BATCH_EVENTS, "items": _EVENT}},
    "additionalProperties": False,
}
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
