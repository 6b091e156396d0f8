"""The query API's errors: the shared shape (``services.http.errors``, CONTRACT §7) with structured ``details``,
FastAPI's validation errors in it too, refusals of a right noted in the refused-reads log, and the documented
error responses of its endpoints. Bad input is a 4xx, never a 500; an unavailable PostgreSQL is a 503 with
``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.responses import Response

from events.citizen_id import CitizenIdError, reader_citizen_id
from services.http import errors as http_errors
from services.http.errors import ApiError, error_response

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorResponse",
    "database_unavailable_response",
    "error_response",
    "install_error_handlers",
    "noted",
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


def noted(request: Request, exc: ApiError) -> ApiError:
    """``exc``, queued in the app's refused-reads log when it is one (401/403); returns it."""
    context = getattr(request.app.state, "renkou", None)
    if context is not None:
        context.refusals.note(request, exc.status, exc.code, exc.message, exc.consumer)
    return exc


def database_unavailable_response(exc: Exception) -> Response:
    """The 503 of a read that could not reach PostgreSQL (``db.DatabaseUnavailableError``)."""
    return error_response(503, "database_unavailable", f"{exc}; nothing was answered, retry later")


def outage_response(exc: BaseException) -> Response:
    """The 503 answering any outage (``services.outages.is_outage``), with ``Retry-After``."""
    return http_errors.outage_response(exc, log)


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
    """Route every error the app can raise through the contract's shape (``services.http.errors``), FastAPI's
    validation errors included; each refusal of a right is noted in the refused-reads log."""
    http_errors.install_error_handlers(app, log, on_api_error=noted)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        first = details[0] if details else {"location": [], "message": "invalid request"}
        where = ".".join(p for p in first["location"] if p not in {"body"}) or "request"
        return error_response(422, "invalid_request", f"{where}: {first['message']}", details)


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
