"""What every ``renkou`` command shares: one-line errors with a non-zero exit, settings, a database connection."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

import asyncpg
import typer
from rich.console import Console

from events.citizen_id import CitizenIdError, reader_citizen_id
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.settings import get_settings

T = TypeVar("T")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def citizen_id_arg(raw: str) -> str:
    try:
        return reader_citizen_id(raw)
    except CitizenIdError as exc:
        fail(f"{raw!r} is not a valid citizen ID: {'; '.join(exc.problems)}", 2)


def date_arg(raw: str | None, name: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        fail(f"{name} {raw!r} is not a date (YYYY-MM-DD)", 2)


def timestamp_arg(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        fail(f"{name} {raw!r} is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00+08:00)", 2)
    if moment.tzinfo is None:
        fail(f"{name} {raw!r} has no UTC offset (e.g. 2024-05-01T12:00:00+08:00)", 2)
    return moment


@asynccontextmanager
async def database() -> AsyncIterator[asyncpg.Connection]:
    """A connection to the configured database, or a one-line error saying it cannot be reached."""
    url = db_roles.url_for(get_settings(), db_roles.OPERATOR)
    dsn = asyncpg_dsn(url)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        where = dsn.rsplit("@", 1)[-1]
        fail(f"cannot reach PostgreSQL at {where} ({exc.__class__.__name__}); is the stack up? (make up)", 3)
    try:
        yield conn
    finally:
        await conn.close()


def print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
