"""Async SQLAlchemy engines; created on demand, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    application_name: str = "renkou",
    server_settings: dict[str, str] | None = None,
) -> AsyncEngine:
    """An asyncpg-backed engine for ``url`` with the settings every renkou service uses (and ``server_settings``)."""
    settings = {"application_name": application_name, "timezone": "UTC", **(server_settings or {})}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": settings},
    )


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's underlying asyncpg connection, for COPY and array-bound bulk statements.

    SQLAlchemy keeps owning the pool (sizes, pre-ping, reset on return); the caller runs its own
    ``conn.transaction()`` and must not mix in SQLAlchemy statements on the same connection meanwhile.
    """
    async with engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn = raw.driver_connection
        assert conn is not None
        yield conn
