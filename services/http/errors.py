"""Errors in the contract's shape for every renkou HTTP API: ``{"error": {"code", "message", "details"}}``.

One ``ApiError`` and one set of handlers for the gateway and the query API (CONTRACT §7): a refusal is an
``ApiError``; Starlette's own errors (unknown path, wrong method), a body over its limit, an outage of a
dependency (503 with ``Retry-After``, ``services.outages``) and a bug (500, logged with its traceback, nothing
internal in the answer) all come out in that shape. Each API keeps only what is its own: the OpenAPI models that
document its ``details``, and the codes it adds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from services.http.request_body import BodyTooLargeError
from services.outages import OUTAGE_ROOTS, RETRY_AFTER_HEADERS, describe, is_outage, outage_error

__all__ = [
    "STATUS_CODES",
    "ApiError",
    "error_body",
    "error_response",
    "field_details",
    "install_error_handlers",
    "outage_response",
]

STATUS_CODES: Mapping[int, str] = {
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
"""The code of an error Starlette raised itself, by status."""


class ApiError(Exception):
    """A refusal with an HTTP status, a stable code, a one-line message and optional details.

    ``consumer``: whose request it refuses, when a token named one (the query API's refused-reads log).
    """

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
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.consumer = consumer

    def body(self) -> dict[str, Any]:
        """The ``error`` object (without the outer ``{"error": ...}``)."""
        return error_body(self.code, self.message, self.details)

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.details, self.headers)


def field_details(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """``(field, message)`` pairs as the gateway's details: ``[{"field": …, "message": …}]``."""
    return [{"field": f, "message": m} for f, m in pairs]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The answer; a 503 always says when to retry."""
    if status == 503 and not (headers and "Retry-After" in headers):
        headers = {**(headers or {}), **RETRY_AFTER_HEADERS}
    document = {"error": error_body(code, message, details)}
    try:
        body = orjson.dumps(document, default=str)
    except orjson.JSONEncodeError:
        # Input echoed back may hold what orjson refuses (a lone surrogate): escape it rather than fail.
        body = json.dumps(document, default=str, ensure_ascii=True).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def outage_response(exc: BaseException, log: logging.Logger, details: Any = None) -> Response:
    """The 503 answering an outage (``services.outages.is_outage``): which dependency, ``Retry-After``."""
    code, message = outage_error(exc)
    log.info("answered 503 %s: %s", code, describe(exc))
    return error_response(503, code, message, details)


Handler = Callable[[Request, Any], Awaitable[Response]]


def install_error_handlers(
    app: FastAPI,
    log: logging.Logger,
    *,
    list_details: bool = False,
    on_api_error: Callable[[Request, ApiError], ApiError] | None = None,
) -> None:
    """Every error ``app`` can raise, answered in the contract's shape.

    ``list_details``: ``details`` is always a list (the gateway's ``[{"field", "message"}]``, empty when there is
    nothing to add), else structured or null (the query API); ``on_api_error``: sees each refusal before it is
    answered (the query API notes refused reads).
    """
    empty_details: list[Any] | None = [] if list_details else None

    async def api_error(request: Request, exc: ApiError) -> Response:
        if on_api_error is not None:
            exc = on_api_error(request, exc)
        details = empty_details if exc.details is None else exc.details
        return error_response(exc.status, exc.code, exc.message, details, exc.headers)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, message, empty_details, headers)

    async def body_too_large(request: Request, exc: BodyTooLargeError) -> Response:
        details = empty_details if list_details else {"limit_bytes": exc.limit}
        return error_response(413, "body_too_large", str(exc), details)

    async def outage(request: Request, exc: Exception) -> Response:
        # A driver's error that reached the top of a request: an outage is a 503; anything else goes on to
        # ``unexpected`` (Starlette's server-error handler).
        if not is_outage(exc):
            raise exc
        return outage_response(exc, log, empty_details)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_outage(exc):  # raised from an outage, whatever its own class
            return outage_response(exc, log, empty_details)
        # A bug, not bad input: logged with its traceback, answered without internals.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; it has been logged", empty_details)

    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BodyTooLargeError, body_too_large)  # type: ignore[arg-type]
    for root in OUTAGE_ROOTS:
        app.add_exception_handler(root, outage)
    app.add_exception_handler(Exception, unexpected)
