"""What every request handler of the query API shares, built by the composition root (``app.create_app``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from fastapi import Request

from services.query_api.access_log import (
    AccessEntry,
    AccessLogUnavailableError,
    AccessLogWriter,
    GrantNoLongerValidError,
)
from services.query_api.auth import Authenticator, Caller
from services.query_api.db import ConnectionLease
from services.query_api.errors import ApiError
from services.query_api.metrics import QueryApiMetrics

__all__ = ["QueryApiContext", "context_of"]

log = logging.getLogger("renkou.query_api")


@dataclass
class QueryApiContext:
    """The connections, the authenticator, the metrics and the knobs of one query API instance."""

    lease: ConnectionLease
    auth: Authenticator
    metrics: QueryApiMetrics
    schema: str
    access_log: AccessLogWriter

    async def record(
        self,
        conn: asyncpg.Connection,
        caller: Caller,
        endpoint: str,
        sections: Sequence[str],
        citizen_ids: Sequence[str],
    ) -> None:
        """Append the access-log entries of a read and commit them; refuse the read if that fails.

        Must be awaited before anything of the read is sent: 503 when the log cannot be written, 401 when the
        grant was revoked or expired meanwhile.
        """
        entry = AccessEntry(
            request_id=caller.request_id,
            consumer=caller.consumer,
            purpose=caller.purpose,
            sections=tuple(sections),
            endpoint=endpoint,
            accessed_at=datetime.now(UTC),
        )
        try:
            await self.access_log.append(entry, citizen_ids)
        except GrantNoLongerValidError:
            self.auth.forget(caller.consumer)
            await self.auth.confirm(conn, caller)  # raises the precise 401 (revoked or expired)
            raise ApiError(401, "token_revoked", f"the grant of {caller.consumer!r} is no longer valid") from None
        except AccessLogUnavailableError as exc:
            self.metrics.access_log_failures.inc()
            log.error("access log write failed (request %s refused): %s", caller.request_id, exc)
            raise ApiError(
                503,
                "access_log_unavailable",
                "the read could not be recorded in the access log, so it is not answered; retry later",
                {"request_id": str(caller.request_id)},
            ) from None
        self.metrics.residents_read.labels(endpoint, caller.consumer).inc(len(set(citizen_ids)))


def context_of(request: Request) -> QueryApiContext:
    ctx: QueryApiContext = request.app.state.renkou
    return ctx
