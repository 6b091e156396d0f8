"""The gateway's error shape and documented response bodies (CONTRACT §7).

Every error is ``{"error": {"code", "message", "details"}}``; ``details`` is always a list of
``{"field", "message"}`` (``field`` empty for the request or the event as a whole), one per failed rule. An
unavailable PostgreSQL or Kafka (``services.outages``) is a 503 with ``Retry-After``, wherever it is raised; an
unexpected error is a 500 in the same shape, never plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.outages import OUTAGE_ROOTS, RETRY_AFTER_HEADERS, describe, is_outage, outage_error
from services.request_body import BodyTooLargeError

log = logging.getLogger("renkou.gateway")


class ErrorDetail(BaseModel):
    field: str = Field(description="Dotted path of the offending field; empty for the whole event or request.")
    message: str = Field(description="The rule that failed.")


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. invalid_event, forbidden_event_type.")
    message: str = Field(description="One line for people.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class Accepted(BaseModel):
    """Where Kafka stored the event (202 when it was just published, 200 for a repeat of an accepted event)."""

    event_id: str
    topic: str
    partition: int
    offset: int


class EventResult(BaseModel):
    """One event of a batch: ``status`` is the HTTP status the event would have got on its own."""

    index: int = Field(description="Position of the event in the request's `events` array.")
    status: int = Field(description="202 accepted, 200 repeat, 403/409/422 rejected, 503 Kafka unavailable.")
    event_id: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    """Per-event results in request order, and how many were accepted."""

    results: list[EventResult]
    accepted: int = Field(description="Events published by this request (202).")
    duplicates: int = Field(description="Events accepted earlier (200).")
    rejected: int = Field(description="Events refused (4xx) or not acknowledged (503).")


class ApiError(Exception):
    """An error answer; raised anywhere in a request, rendered by ``api_error_handler``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The ``error`` object (without the outer ``{"error": ...}``)."""
    return {"code": code, "message": message, "details": [{"field": f, "message": m} for f, m in details]}


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised by orjson (a thousand per-event results are the hot path)."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def retry_later(status: int, headers: dict[str, str] | None = None) -> dict[str, str] | None:
    """``headers`` with ``Retry-After`` added to a 503 that does not say it yet."""
    if status != 503 or (headers and "Retry-After" in headers):
        return headers
    return {**(headers or {}), **RETRY_AFTER_HEADERS}


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response({"error": exc.body()}, exc.status, retry_later(exc.status, exc.headers))


def outage_response(exc: BaseException) -> Response:
    """The 503 answering outage ``exc``: which dependency, ``Retry-After``."""
    code, message = outage_error(exc)
    log.info("answered 503 %s: %s", code, describe(exc))
    return json_response({"error": error_body(code, message)}, 503, dict(RETRY_AFTER_HEADERS))


async def outage_handler(request: Request, exc: Exception) -> Response:
    """A driver's error that reached the top of a request: 503 if it is an outage; anything else goes on to
    ``unexpected_error_handler``."""
    if not is_outage(exc):
        raise exc
    return outage_response(exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Last resort (Starlette's server-error handler): an outage raised from anything is still a 503; a bug is a
    500 in the contract's shape, logged with its traceback."""
    if is_outage(exc):
        return outage_response(exc)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_response({"error": error_body("internal_error", "internal error; it has been logged")}, 500)


async def body_too_large_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLargeError)
    return json_response({"error": error_body("body_too_large", str(exc))}, 413)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the gateway can raise, answered in the contract's shape."""
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(BodyTooLargeError, body_too_large_handler)
    for root in OUTAGE_ROOTS:
        app.add_exception_handler(root, outage_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in our shape."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    return json_response({"error": error_body(code, str(exc.detail))}, exc.status_code, dict(exc.headers or {}) or None)


# The response documentation shared by both endpoints.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not JSON."},
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked department token."},
    413: {"model": ErrorResponse, "description": "Body too large, or more than 1000 events in a batch."},
    422: {"model": ErrorResponse, "description": "Not an acceptable event or batch; `details` names every rule."},
    503: {"model": ErrorResponse, "description": "Kafka or PostgreSQL unavailable: retry (repeats are safe)."},
}
