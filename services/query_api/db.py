"""Database connections of the query API: asyncpg connections leased from a SQLAlchemy engine.

SQLAlchemy owns the connections (URL, driver settings, disposal); the query API checks up to ``size`` of them
out once and keeps them, handing the raw asyncpg connection to one request at a time. Checking a connection
out of SQLAlchemy's async pool per request (with its pre-ping and reset-on-return round trips) costs several
hundred microseconds — more than the reads themselves — while a lease is an ``asyncio.Queue`` hand-over.

Reads run as single autocommit statements; a connection that broke (server restart, network: any outage of
``services.outages``) is invalidated and replaced on the next request, and the request that saw it fail gets a
503. Once PostgreSQL is back, the next request opens a new connection: no restart of the service is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.outages import DependencyUnavailableError, is_outage

__all__ = ["ConnectionLease", "DatabaseUnavailableError"]


class DatabaseUnavailableError(DependencyUnavailableError):
    """No connection to PostgreSQL could be had (or the one in use broke)."""

    dependency = "postgresql"


class ConnectionLease:
    """Up to ``size`` long-lived asyncpg connections from ``engine``, one request at a time each."""

    def __init__(self, engine: AsyncEngine, size: int, *, connect_timeout: float = 5.0) -> None:
        self.engine = engine
        self.size = size
        self.connect_timeout = connect_timeout
        self._idle: list[tuple[AsyncConnection, asyncpg.Connection]] = []
        self._open = 0  # connections checked out of SQLAlchemy, idle or in use (or being opened)
        self._all: set[AsyncConnection] = set()
        self._changed = asyncio.Condition()

    async def _connect(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        try:
            sa_conn = await asyncio.wait_for(self.engine.connect(), self.connect_timeout)
            raw = await sa_conn.get_raw_connection()
            conn = raw.driver_connection
            assert conn is not None
        except BaseException as exc:
            await self._forget_one()
            # Whatever stops a connection from opening is the database's unavailability to this service (a
            # missing database or role included), except a cancellation or a bug.
            if isinstance(exc, (SQLAlchemyError, asyncpg.PostgresError)) or is_outage(exc):
                raise DatabaseUnavailableError(f"cannot connect to PostgreSQL ({type(exc).__name__})") from exc
            raise
        self._all.add(sa_conn)
        return sa_conn, conn

    async def _take(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        dead: list[AsyncConnection] = []
        try:
            async with self._changed:
                while True:
                    # An idle connection the server dropped meanwhile (a restart) is not handed out: after an
                    # outage the first request gets a fresh connection instead of a 503 per stale one.
                    while self._idle and self._idle[-1][1].is_closed():
                        dead.append(self._idle.pop()[0])
                        self._open -= 1
                    if self._idle:
                        return self._idle.pop()
                    if self._open < self.size:
                        self._open += 1
                        break
                    await self._changed.wait()
                if dead:
                    self._changed.notify(len(dead))
        finally:
            for sa_conn in dead:
                await self._close_dead(sa_conn)
        return await self._connect()

    async def _give_back(self, pair: tuple[AsyncConnection, asyncpg.Connection]) -> None:
        async with self._changed:
            self._idle.append(pair)
            self._changed.notify()

    async def _forget_one(self) -> None:
        # A connection is gone: its slot is free for whoever waits (they open a new one).
        async with self._changed:
            self._open -= 1
            self._changed.notify()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the caller alone until the block ends.

        Raises ``DatabaseUnavailableError`` if none can be had, or if the connection broke inside the block.
        """
        sa_conn, conn = await self._take()
        broken = False
        try:
            yield conn
        except Exception as exc:
            if not is_outage(exc) or isinstance(exc, DependencyUnavailableError):
                broken = conn.is_closed() or conn.is_in_transaction()
                raise
            broken = True
            raise DatabaseUnavailableError(f"the connection to PostgreSQL broke ({type(exc).__name__})") from exc
        except BaseException:
            # A cancelled or failed statement may leave the connection mid-protocol: only keep it if it is idle.
            broken = conn.is_closed() or conn.is_in_transaction()
            raise
        finally:
            if broken or conn.is_closed():
                await self._discard(sa_conn)
            else:
                await self._give_back((sa_conn, conn))

    async def _discard(self, sa_conn: AsyncConnection) -> None:
        await self._close_dead(sa_conn)
        await self._forget_one()

    async def _close_dead(self, sa_conn: AsyncConnection) -> None:
        self._all.discard(sa_conn)
        with contextlib.suppress(Exception):  # the connection is gone either way; nothing to report
            await sa_conn.invalidate()
            await sa_conn.close()

    async def close(self) -> None:
        """Return every connection to SQLAlchemy (the engine is disposed by its owner)."""
        self._idle.clear()
        for sa_conn in list(self._all):
            with contextlib.suppress(Exception):  # shutting down; the engine is disposed next
                await sa_conn.close()
        self._all.clear()
        self._open = 0
