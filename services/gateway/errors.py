"""The gateway's error shape and documented response bodies (CONTRACT §7).

Every error is ``{"error": {"code", "message", "details"}}``; ``details`` is always a list of
``{"field", "message"}`` (``field`` empty for the request or the event as a whole), one per failed rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


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


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response({"error": exc.body()}, exc.status, exc.headers)


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
