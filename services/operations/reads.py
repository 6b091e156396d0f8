"""Who read what: the refused reads (CONTRACT §11) and a search of the access log, for the CLI and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from projections.resident.tables import named
from services.db import audit_tables
from services.db.audit_tables import access_log

__all__ = ["refused_reads", "search_access_log"]

_REFUSED: Final = named(audit_tables.refused_reads)


async def refused_reads(
    conn: asyncpg.Connection, *, consumer: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[asyncpg.Record]:
    """Reads the query API refused for want of a right, newest first (``consumer``'s only, from ``since`` on)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT refused_at, request_id, consumer, purpose, method, path, status, code, message "
        f"FROM {_REFUSED} WHERE ($1::text IS NULL OR consumer = $1) AND ($2::timestamptz IS NULL OR "
        "refused_at >= $2) ORDER BY refused_at DESC, id DESC LIMIT $3",
        consumer,
        since,
        limit,
    )
    return rows


async def search_access_log(
    conn: asyncpg.Connection,
    *,
    citizen_ids: list[str] | None = None,
    consumer: str | None = None,
    purpose: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[asyncpg.Record]:
    """Access-log entries matching every filter given (a person's numbers, a consumer, a purpose, a time range),
    newest first. Without a resident the search scans by time: give a range on a large log."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT citizen_id, chain_seq, request_id, consumer, purpose, sections, endpoint, accessed_at "
        f"FROM {named(access_log)} WHERE ($1::text[] IS NULL OR citizen_id = ANY($1)) "
        "AND ($2::text IS NULL OR consumer = $2) "
        "AND ($3::text IS NULL OR purpose = $3) AND ($4::timestamptz IS NULL OR accessed_at >= $4) "
        "AND ($5::timestamptz IS NULL OR accessed_at < $5) ORDER BY accessed_at DESC, citizen_id, chain_seq DESC "
        "LIMIT $6",
        citizen_ids,
        consumer,
        purpose,
        since,
        until,
        limit,
    )
    return rows
