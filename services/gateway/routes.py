"""The gateway's HTTP routes (CONTRACT §7): ``POST /v1/events``, ``POST /v1/events:batch``, the probes and
``/metrics``. A request's token is checked before its body is read, and no body is read beyond its cap
(``MAX_EVENT_BYTES``, ``MAX_BATCH_BYTES``). What they use lives on ``app.state``: the ``Runtime`` the lifespan
opened and the ``GatewayMetrics`` (``services.gateway.app`` builds both).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from events import DEPARTMENTS, EVENT_TYPES
from events.examples import example_event
from services.db.engine import driver_connection
from services.gateway.auth import bearer, department_of_token
from services.gateway.errors import (
    ERROR_RESPONSES,
    Accepted,
    ApiError,
    BatchResponse,
    ErrorResponse,
    json_response,
    retry_later,
)
from services.gateway.ingest import Ingestor, NotJson, Result, Submitted
from services.http.errors import field_details
from services.http.readiness import Readiness, check_readiness, kafka_metadata, postgresql
from services.http.request_body import read_body
from services.outages import outages_of
from services.publisher import Publisher, PublishError
from services.workers import metrics_response

log = logging.getLogger("renkou.gateway")
router = APIRouter()

MAX_BATCH_EVENTS = 1000
MAX_EVENT_BYTES = 1024 * 1024
"""The body of ``POST /v1/events``: one event, at most what Kafka takes in one record by default (1 MiB)."""
MAX_BATCH_BYTES = 16 * 1024 * 1024
"""The body of ``POST /v1/events:batch``: 1000 events of 16 KiB on average. A department's events are well under
2 KiB each (the simulator's average about 0.7 KiB), so a full batch is ~2 MiB; the cap is generous on purpose,
while the per-record size rule (``events``) decides what one event may be."""


# The OpenAPI schemas of the two request bodies (the events themselves are checked by events.parse_event).
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


@dataclass
class Runtime:
    """What one gateway process holds while it serves (``app.state.runtime``)."""

    ingestor: Ingestor
    publisher: Publisher
    connecting: asyncio.Task[None] | None = None


async def _connect(publisher: Publisher) -> None:
    try:
        await publisher.start()
    except PublishError as exc:
        log.warning("%s", exc)


def runtime(request: Request) -> Runtime:
    """What the lifespan opened (engine, publisher, ingestor); 503 while the gateway starts or stops."""
    found: Runtime | None = request.app.state.runtime
    if found is None:
        raise ApiError(503, "starting", "the gateway is starting or stopping")
    return found


async def authenticate(request: Request, authorization: str | None) -> str:
    # Before the body is read: an unauthenticated request is refused without reading it. An unavailable
    # PostgreSQL is answered 503 by the outage handler (services.gateway.errors).
    token = bearer(authorization)
    with outages_of("postgresql"):
        async with driver_connection(runtime(request).ingestor.engine) as conn:
            return await department_of_token(conn, token)


@router.post(
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
    department = await authenticate(request, authorization)
    body = await read_body(request, MAX_EVENT_BYTES)
    result = (await runtime(request).ingestor.ingest(department, [Submitted(body, _decode(body))]))[0]
    if result.error is not None:
        return json_response({"error": result.error}, result.status, retry_later(result.status))
    return json_response(result.coordinates(), result.status)


@router.post(
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
    department = await authenticate(request, authorization)
    body = await read_body(request, MAX_BATCH_BYTES)
    events = _batch_events(_decode(body))
    request.app.state.metrics.batch_size.observe(len(events))
    results = await runtime(request).ingestor.ingest(department, [Submitted(_encode(e), e) for e in events])
    status = _batch_status(results)
    return json_response(_batch_body(results), status, retry_later(status))


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> Response:
    """200 while the process serves, whatever PostgreSQL and Kafka do (``/readyz`` says whether they answer)."""
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Kafka answer",
    responses={503: {"description": "Not ready: `unavailable` names the dependencies that do not answer."}},
)
async def readyz(request: Request) -> Response:
    """200 ``{"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}`` when PostgreSQL answers
    ``SELECT 1`` and a Kafka broker answers the producer's metadata request, each within 2 s; 503 naming what
    does not otherwise. A producer that is not connected is (re)connected in the background."""
    current: Runtime | None = request.app.state.runtime
    if current is None:
        readiness = Readiness.starting("postgresql", "kafka")
        return readiness.response()
    publisher = current.publisher

    async def kafka() -> None:
        if not publisher.started:
            # Connect in the background: a probe must answer within its own short timeout, whatever Kafka does.
            if current.connecting is None or current.connecting.done():
                current.connecting = asyncio.create_task(_connect(publisher))
            raise ConnectionError("the producer is not connected; connecting")
        await kafka_metadata(publisher.producer.client)()

    readiness = await check_readiness({"postgresql": postgresql(current.ingestor.engine), "kafka": kafka})
    return readiness.response()


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    # Several workers (see __main__): every worker's counters, whichever worker answers.
    return metrics_response(request.app.state.metrics.registry)


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
