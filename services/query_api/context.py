"""What every request handler of the query API shares, built by the composition root (``app.create_app``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import Request

from services.access_log.database import (
    AccessEntry,
    AccessLogSink,
    AccessLogUnavailableError,
    GrantNoLongerValidError,
    read_groups,
)
from services.query_api.auth import Authenticator, Caller
from services.query_api.db import ConnectionLease
from services.query_api.errors import ApiError
from services.query_api.metrics import QueryApiMetrics
from services.query_api.refusals import RefusalLog
from services.query_api.single_read import NumberHasAliasesError
from services.query_api.views import ReadTime, read_live_view, read_views

__all__ = ["QueryApiContext", "context_of"]

log = logging.getLogger("renkou.query_api")


@dataclass
class QueryApiContext:
    """The connections, the authenticator, the metrics and the knobs of one query API instance.

    ``lease`` is where reads go: the primary, or a standby when the access log goes through Kafka
    (``access_log.checks_grants`` false, CONTRACT §13). ``primary`` is the primary's, for what a read writes
    itself (citizens' own reads, refusals); the same lease when reads go to the primary.
    """

    lease: ConnectionLease
    auth: Authenticator
    metrics: QueryApiMetrics
    schema: str
    access_log: AccessLogSink
    refusals: RefusalLog
    primary: ConnectionLease

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
        await self._check_grant(conn, caller)
        try:
            await self.access_log.append(self._entry(caller, endpoint, sections), citizen_ids)
        except (GrantNoLongerValidError, AccessLogUnavailableError) as exc:
            raise await self._refusal(conn, caller, exc) from None
        self.metrics.residents_read.labels(endpoint, caller.consumer).inc(len(set(citizen_ids)))

    async def record_read(
        self,
        conn: asyncpg.Connection,
        caller: Caller,
        endpoint: str,
        sections: Sequence[str],
        views: Sequence[Mapping[str, Any]],
        *,
        grant_checked: bool = False,
    ) -> None:
        """The entries of a read of ``views``: one per resident read, and one per relative their ``family``
        sections disclose (CONTRACT §11: sections ``family``, endpoint ``family``), queued together so that they
        commit together, before the answer; refused like ``record``. ``grant_checked``: the reading statement
        already checked the grant."""
        if not grant_checked:
            await self._check_grant(conn, caller)
        try:
            await self.access_log.append_groups(read_groups(self._entry(caller, endpoint, sections), views))
        except (GrantNoLongerValidError, AccessLogUnavailableError) as exc:
            raise await self._refusal(conn, caller, exc) from None
        self.metrics.residents_read.labels(endpoint, caller.consumer).inc(len({view["citizen_id"] for view in views}))

    async def read_resident(
        self, conn: asyncpg.Connection, caller: Caller, citizen_id: str, sections: Sequence[str]
    ) -> dict[str, Any] | None:
        """The live view of ``citizen_id`` (only ``sections``), read and recorded in one statement and one commit.

        ``None`` if nothing is known about the citizen (nothing recorded); refused like ``record`` otherwise. From a
        standby: read, then recorded through ``record_read``.
        """
        if not self.access_log.checks_grants:
            checked = True  # by the reading statement itself
            try:
                grant = (caller.consumer, datetime.now(UTC))
                view = await read_live_view(
                    conn, citizen_id, sections, self.schema, None, self.access_log.timeout, grant
                )
                shown = [view] if view is not None else []
            except NumberHasAliasesError:
                found = await read_views(conn, [citizen_id], ReadTime(), sections, self.schema)
                view, shown, checked = found.get(citizen_id), list(found.values()), False
            except GrantNoLongerValidError as exc:
                raise await self._refusal(conn, caller, exc) from None
            if shown:
                await self.record_read(conn, caller, "resident", sections, shown, grant_checked=checked)
            return view
        try:
            view = await read_live_view(
                conn,
                citizen_id,
                sections,
                self.schema,
                self._entry(caller, "resident", sections),
                self.access_log.timeout,
            )
        except NumberHasAliasesError:
            # One of a person's numbers (§12): their combined view under the current number, recorded as such.
            views = await read_views(conn, [citizen_id], ReadTime(), sections, self.schema)
            if not views:
                return None
            await self.record_read(conn, caller, "resident", sections, list(views.values()))
            return views[citizen_id]
        except asyncpg.PostgresConnectionError:
            raise  # the lease turns it into a 503 database_unavailable
        except (GrantNoLongerValidError, asyncpg.PostgresError, TimeoutError) as exc:
            raise await self._refusal(conn, caller, exc) from None
        if view is not None:
            self.metrics.residents_read.labels("resident", caller.consumer).inc()
        return view

    async def _check_grant(self, conn: asyncpg.Connection, caller: Caller) -> None:
        """Where appending does not re-check the grant (the access-log topic), re-read it here: 401 if it was
        revoked or expired since it was cached. On a standby a revocation is visible once ``revoke_grant``
        returned (it waits for the synchronous standby to apply it)."""
        if not self.access_log.checks_grants:
            await self.auth.confirm(conn, caller)

    @staticmethod
    def _entry(caller: Caller, endpoint: str, sections: Sequence[str]) -> AccessEntry:
        return AccessEntry(
            request_id=caller.request_id,
            consumer=caller.consumer,
            purpose=caller.purpose,
            sections=tuple(sections),
            endpoint=endpoint,
            accessed_at=datetime.now(UTC),
        )

    async def _refusal(self, conn: asyncpg.Connection, caller: Caller, exc: Exception) -> ApiError:
        """The error answering a read whose access-log entry was not written because of ``exc``."""
        if isinstance(exc, GrantNoLongerValidError):
            self.auth.forget(caller.consumer)
            await self.auth.confirm(conn, caller)  # raises the precise 401 (revoked or expired)
            return ApiError(401, "token_revoked", f"the grant of {caller.consumer!r} is no longer valid")
        self.metrics.access_log_failures.inc()
        reason = exc if isinstance(exc, AccessLogUnavailableError) else f"{type(exc).__name__}: {exc}"
        log.error("access log write failed (request %s refused): %s", caller.request_id, reason)
        return ApiError(
            503,
            "access_log_unavailable",
            "the read could not be recorded in the access log, so it is not answered; retry later",
            {"request_id": str(caller.request_id)},
        )


def context_of(request: Request) -> QueryApiContext:
    ctx: QueryApiContext = request.app.state.renkou
    return ctx
