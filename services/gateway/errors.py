"""The gateway's documented response bodies and its error details (CONTRACT §7).

Every error is ``{"error": {"code", "message", "details"}}`` (``services.http.errors``, shared with the query API);
the gateway's ``details`` is always a list of ``{"field", "message"}`` (``field`` empty for the request or the event
as a whole), one per failed rule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.http import errors as http_errors
from services.http.errors import ApiError, field_details
from services.outages import RETRY_AFTER_HEADERS

__all__ = [
    "ERROR_RESPONSES",
    "Accepted",
    "ApiError",
    "BatchResponse",
    "ErrorResponse",
    "EventResult",
    "error_body",
    "install_error_handlers",
    "json_response",
    "retry_later",
]

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


def error_body(code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The ``error`` object of one event's result (without the outer ``{"error": ...}``)."""
    return http_errors.error_body(code, message, field_details(details))


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised by orjson (a thousand per-event results are the hot path)."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def retry_later(status: int, headers: dict[str, str] | None = None) -> dict[str, str] | None:
    """``headers`` with ``Retry-After`` added to a 503 that does not say it yet."""
    if status != 503 or (headers and "Retry-After" in headers):
        return headers
    return {**(headers or {}), **RETRY_AFTER_HEADERS}


def install_error_handlers(app: FastAPI) -> None:
    """Every error the gateway can raise, answered in the contract's shape with a list of details."""
    http_errors.install_error_handlers(app, log, list_details=True)


# The response documentation shared by both endpoints.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not JSON."},
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked department token."},
    413: {"model": ErrorResponse, "description": "Body too large, or more than 1000 events in a batch."},
    422: {"model": ErrorResponse, "description": "Not an acceptable event or batch; `details` names every rule."},
    503: {"model": ErrorResponse, "description": "Kafka or PostgreSQL unavailable: retry (repeats are safe)."},
}
