"""Refused reads (CONTRACT §11): who asked for what without the right to, kept in ``refused_reads``.

A refusal costs the refused caller nothing to provoke, so it must not cost the service a round trip each: the
refusals are queued in memory and written in batches (at most every ``FLUSH_S`` seconds, one INSERT per batch).
The queue is bounded; a flood beyond it is counted (``renkou_query_api_refusals_dropped_total``) rather than held,
and a batch the database refuses is logged and counted the same way — the refusal itself has been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import asyncpg
from starlette.requests import Request

from projections.resident.tables import named
from services.db import audit_tables

__all__ = ["REFUSED_STATUSES", "Refusal", "RefusalLog"]

_AGGREGATE: Final = named(audit_tables.aggregate_reads)
_REFUSED: Final = named(audit_tables.refused_reads)

REFUSED_STATUSES = frozenset({401, 403})
FLUSH_S = 0.5
MAX_QUEUE = 10_000
MAX_BATCH = 1_000
_TEXT = 300  # longest purpose, path or message kept


@dataclass(frozen=True, slots=True)
class Refusal:
    refused_at: datetime
    request_id: uuid.UUID
    consumer: str | None
    purpose: str | None
    method: str
    path: str
    status: int
    code: str
    message: str


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    # Whatever a caller sent, stored as text PostgreSQL accepts (no NUL) and of bounded length.
    return text.replace("\x00", "\ufffd")[:_TEXT]


class RefusalLog:
    """Collects refusals and writes them in batches through ``connection`` (a lease of the API's pool)."""

    def __init__(
        self,
        connection: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._connection = connection
        self._on_drop = on_drop
        self._queue: list[Refusal] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def note(self, request: Request, status: int, code: str, message: str, consumer: str | None) -> None:
        """Queue a refusal of ``request`` (only 401 and 403 are refusals of a right; others are ignored)."""
        if status not in REFUSED_STATUSES or not request.url.path.startswith("/v1/"):
            return
        if len(self._queue) >= MAX_QUEUE:
            self._on_drop(1)
            return
        self._queue.append(
            Refusal(
                refused_at=datetime.now(UTC),
                request_id=uuid.uuid4(),
                consumer=_clip(consumer),
                purpose=_clip(request.headers.get("x-purpose")),
                method=request.method,
                path=_clip(request.url.path) or "",
                status=status,
                code=code,
                message=_clip(message) or "",
            )
        )
        if len(self._queue) >= MAX_BATCH:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="refusal-log")

    async def stop(self) -> None:
        """Write what is queued and stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def flush(self) -> int:
        """Write the queued refusals now; return how many."""
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        if not batch:
            return 0
        try:
            async with self._connection() as conn:
                await conn.execute(
                    f"INSERT INTO {_REFUSED} (refused_at, request_id, consumer, purpose, method, path, status, "
                    "code, message) SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], "
                    "$5::text[], $6::text[], $7::smallint[], $8::text[], $9::text[])",
                    [r.refused_at for r in batch],
                    [r.request_id for r in batch],
                    [r.consumer for r in batch],
                    [r.purpose for r in batch],
                    [r.method for r in batch],
                    [r.path for r in batch],
                    [r.status for r in batch],
                    [r.code for r in batch],
                    [r.message for r in batch],
                )
        except Exception as exc:  # the refusals were answered; losing their record must not stop the service
            logging.getLogger("renkou.query_api").warning("could not record %d refused reads: %s", len(batch), exc)
            self._on_drop(len(batch))
            return 0
        return len(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_S)
            self._wake.clear()
            while self._queue:
                if not await self.flush():
                    break
            if self._stopping:
                return


async def record_aggregate_read(
    conn: asyncpg.Connection,
    *,
    request_id: uuid.UUID,
    consumer: str,
    purpose: str,
    endpoint: str,
    detail: str,
) -> None:
    """One read of aggregates (statistics), written before the answer leaves."""
    await conn.execute(
        f"INSERT INTO {_AGGREGATE} (read_at, request_id, consumer, purpose, endpoint, detail) "
        "VALUES (now(), $1, $2, $3, $4, $5::jsonb)",
        request_id,
        consumer,
        purpose,
        endpoint,
        detail,
    )
