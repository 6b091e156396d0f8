"""Errors in the contract's shape: ``{"error": {"code", "message", "details"}}`` (CONTRACT §7).

Every refusal is an ``ApiError``; FastAPI's own validation errors, unknown routes and wrong methods are turned
into the same shape, so a client never has to parse two kinds of error. Bad input is a 4xx, never a 500; an
unavailable PostgreSQL (``services.outages``), wherever it is raised, is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from events.citizen_id import CitizenIdError, reader_citizen_id
from services.outages import OUTAGE_ROOTS, RETRY_AFTER_HEADERS, describe, is_outage, outage_error
from services.request_body import BodyTooLargeError

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorResponse",
    "database_unavailable_response",
    "error_response",
    "install_error_handlers",
    "outage_response",
    "responses",
]

log = logging.getLogger("renkou.query_api")


class ErrorBody(BaseModel):
    code: str = Field(description="A stable machine-readable code, e.g. `invalid_citizen_id`, `purpose_not_granted`.")
    message: str = Field(description="One human-readable line saying what was wrong.")
    details: Any = Field(default=None, description="Structured specifics (the failed rules, the offending fields).")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(Exception):
    """A refusal with an HTTP status, a stable code, a one-line message and optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
        *,
        consumer: str | None = None,
    ) -> None:
        """``consumer``: whose request it refuses, when the token named one (for the refused-reads log)."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.consumer = consumer

    def noted(self, request: Request) -> ApiError:
        """This refusal, queued in the app's refused-reads log when it is one (401/403); returns itself."""
        context = getattr(request.app.state, "renkou", None)
        if context is not None:
            context.refusals.note(request, self.status, self.code, self.message, self.consumer)
        return self

    def response(self) -> Response:
        """This refusal in the contract's error shape (the app's handler and the single-read lane use it)."""
        return error_response(self.status, self.code, self.message, self.details, self.headers)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    if status == 503 and not (headers and "Retry-After" in headers):
        headers = {**(headers or {}), **RETRY_AFTER_HEADERS}
    document = {"error": {"code": code, "message": message, "details": details}}
    try:
        body = orjson.dumps(document, default=str)
    except orjson.JSONEncodeError:
        # Input echoed back may hold what orjson refuses (a lone surrogate): escape it rather than fail.
        body = json.dumps(document, default=str, ensure_ascii=True).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def database_unavailable_response(exc: Exception) -> Response:
    """The 503 of a read that could not reach PostgreSQL (``db.DatabaseUnavailableError``)."""
    return error_response(503, "database_unavailable", f"{exc}; nothing was answered, retry later")


def outage_response(exc: BaseException) -> Response:
    """The 503 answering any outage (``services.outages.is_outage``), with ``Retry-After``."""
    code, message = outage_error(exc)
    log.info("answered 503 %s: %s", code, describe(exc))
    return error_response(503, code, message)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "location": [str(part) for part in err.get("loc", ())],
                "rule": err.get("type"),
                "message": err.get("msg"),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through the contract's shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.noted(request).response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        first = details[0] if details else {"location": [], "message": "invalid request"}
        where = ".".join(p for p in first["location"] if p not in {"body"}) or "request"
        return error_response(422, "invalid_request", f"{where}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, message, None, headers)

    @app.exception_handler(BodyTooLargeError)
    async def body_too_large(request: Request, exc: BodyTooLargeError) -> Response:
        return error_response(413, "body_too_large", str(exc), {"limit_bytes": exc.limit})

    async def outage(request: Request, exc: Exception) -> Response:
        # A driver's error that reached the top of a request: an outage is a 503; anything else goes on to
        # ``unexpected`` (Starlette's server-error handler).
        if not is_outage(exc):
            raise exc
        return outage_response(exc)

    for root in OUTAGE_ROOTS:
        app.add_exception_handler(root, outage)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_outage(exc):  # raised from an outage, whatever its own class
            return outage_response(exc)
        # A bug, not bad input: log it with its traceback, answer in the contract's shape without internals.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; it has been logged")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries in the error shape for ``statuses``."""
    described = {
        400: "Malformed request (e.g. no `X-Purpose` header).",
        401: "Missing, unknown, expired or revoked token.",
        403: "The grant does not cover this purpose or section.",
        404: "No such resident, household or endpoint.",
        413: "The body is larger than the endpoint takes.",
        422: "Invalid parameter (the message names the failed rule).",
        503: "The access log (or the database) is unavailable; nothing was answered.",
    }
    return {s: {"model": ErrorResponse, "description": described.get(s, "Error")} for s in statuses}


def citizen_id_param(raw: str) -> str:
    """A path's citizen ID, normalised; a 15-digit legacy number upgraded to its 18-character form by the
    standard rule (§12: then resolved like any number of the person); a malformed one is a 422 naming every
    failed rule."""
    try:
        return reader_citizen_id(raw)
    except CitizenIdError as exc:
        raise ApiError(
            422,
            "invalid_citizen_id",
            f"{raw!r} is not a valid citizen ID: {'; '.join(exc.problems)}",
            {"citizen_id": raw, "problems": list(exc.problems)},
        ) from None
