"""``GET /v1/me`` and ``GET /v1/me/access-log``: a citizen sees their own data and who read it (CONTRACT §11).

The caller proves who they are with an OpenID Connect ID token of the city's identity provider
(``services.identity.oidc``; the local one in demos: ``renkou citizens token ID``). The citizen ID comes from the
token's claim, never from the request: a citizen reaches their own data and nobody else's. Their own reads are
not entries of their access log — the log tells them who *else* read their data: consumers (with purpose and
sections), the family reads that disclosed them, operators and view-topic deliveries. So a citizen's own view
is, for each relative its ``family`` section names, such a read: consumer ``citizen:<ID>``, purpose
``own_data``, committed before the answer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import asyncpg
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from projections.resident.reads import person_numbers
from projections.resident.render import VIEW_SECTIONS
from services.access_log.database import AccessEntry, append_without_grant, read_groups
from services.identity.local_idp import jwks_path
from services.identity.oidc import CitizenAuthError, CitizenIdentity, CitizenTokenVerifier
from services.query_api.auth import bearer_token
from services.query_api.context import context_of
from services.query_api.errors import ApiError, responses
from services.query_api.models import AccessLogResponse
from services.query_api.person_log import BEFORE_HELP, person_access_log
from services.query_api.views import ReadTime, read_views
from services.settings import Settings

__all__ = ["OWN_DATA", "citizens_router", "own_view", "verifier_for"]

OWN_DATA: Final = "own_data"
"""The purpose of a citizen's read of their own data, in the entries of the relatives it discloses."""
log = logging.getLogger("renkou.query_api")


def verifier_for(settings: Settings) -> CitizenTokenVerifier:
    """The verifier of ``settings``' identity provider (the local one's key set unless one is configured)."""
    return CitizenTokenVerifier(
        issuer=settings.citizen_oidc_issuer,
        audience=settings.citizen_oidc_audience,
        jwks=settings.citizen_oidc_jwks or str(jwks_path(settings.state_dir)),
        claim=settings.citizen_id_claim,
    )


async def own_view(
    conn: asyncpg.Connection, citizen_id: str, schema: str, *, endpoint: str
) -> tuple[dict[str, Any], uuid.UUID] | None:
    """The citizen's live view, every section, and the read's request ID — or None when nothing is recorded.

    Their own read is not theirs to be told of; each relative their ``family`` section names gets an entry
    (consumer ``citizen:<ID>``, purpose ``own_data``), committed before this returns. A failed write raises."""
    view = (await read_views(conn, [citizen_id], ReadTime(), schema=schema)).get(citizen_id)
    if view is None:
        return None
    read = AccessEntry(
        uuid.uuid4(), f"citizen:{citizen_id}", OWN_DATA, tuple(VIEW_SECTIONS), endpoint, datetime.now(UTC)
    )
    await append_without_grant(conn, read_groups(read, [view])[1:])
    return view, read.request_id


def citizens_router(settings: Settings) -> APIRouter:
    """The citizen's two endpoints, checking tokens against ``settings``' identity provider."""
    router = APIRouter(prefix="/v1", tags=["citizens"])
    verifier = verifier_for(settings)

    async def citizen(request: Request) -> CitizenIdentity:
        token = bearer_token(request, "identity provider's ID token")
        try:
            return await verifier.verify(token)
        except CitizenAuthError as exc:
            raise ApiError(401, "invalid_citizen_token", str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    @router.get(
        "/me",
        responses=responses(401, 404, 503),
        summary="The citizen's own resident view, every section",
    )
    async def me(request: Request) -> Response:
        """The live view of the citizen the ID token names, with every section."""
        from services.query_api.routes import json_answer

        who = await citizen(request)
        ctx = context_of(request)
        async with ctx.primary.connection() as conn:  # it appends the relatives' entries itself
            try:
                found = await own_view(conn, who.citizen_id, ctx.schema, endpoint="me")
            except asyncpg.PostgresConnectionError:
                raise  # the lease turns it into a 503 database_unavailable
            except (asyncpg.PostgresError, TimeoutError) as exc:
                ctx.metrics.access_log_failures.inc()
                log.error("access log write failed (a citizen's own read refused): %s: %s", type(exc).__name__, exc)
                raise ApiError(
                    503,
                    "access_log_unavailable",
                    "the read could not be recorded in your relatives' access logs, so it is not answered; retry",
                ) from None
        if found is None:
            raise ApiError(404, "not_found", "nothing is recorded about you in the population register")
        view, request_id = found
        answer = json_answer(view)
        answer.headers["X-Request-ID"] = str(request_id)
        return answer

    @router.get(
        "/me/access-log",
        response_model=AccessLogResponse,
        responses=responses(401, 503),
        summary="Every access to the citizen's data: who, for which purpose, which sections, when",
    )
    async def my_access_log(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many entries, newest first.")] = 100,
        before_seq: Annotated[
            int | None, Query(ge=1, le=2**31 - 1, description="Entries below this chain position.")
        ] = None,
        before: Annotated[str | None, Query(max_length=400, description=BEFORE_HELP)] = None,
    ) -> Response:
        """The newest entries of the citizen's access log (with the hash-chain values that prove none was
        removed), newest first, under every number they have held; page with ``before`` (or ``before_seq``)."""
        from services.query_api.routes import json_answer

        who = await citizen(request)
        ctx = context_of(request)
        async with ctx.primary.connection() as conn:  # every entry the relay chained so far
            numbers = await person_numbers(conn, who.citizen_id, ctx.schema)
            answer = await person_access_log(
                conn, numbers, limit=limit, before_seq=before_seq, before=before, show_aliases=True
            )
        return json_answer(answer)

    return router
