"""Driving the web console in tests: the service as its own process, accounts, and logging in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from services.console.accounts import add_account
from services.db.dsn import asyncpg_dsn
from services.infra.ports import free_port
from services.settings import Settings
from tests.support.query_api import QueryApi, running_service

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def running_console(settings: Settings, *, demo_idp: bool = True) -> AsyncIterator[QueryApi]:
    """``python -m services.console`` on a free loopback port against ``settings``' stack; stopped on exit."""
    port = free_port()
    env = {
        **settings.environment(),
        "RENKOU_CONSOLE_PORT": str(port),
        "RENKOU_CONSOLE_DEMO_IDP": "1" if demo_idp else "0",
    }
    async with running_service("services.console", port, env) as service:
        yield service


async def account(database_url: str, name: str, role: str) -> str:
    """A console account in ``database_url`` (the owner's URL, as ``renkou operators add`` connects); its password."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await add_account(conn, name, role)
    finally:
        await conn.close()


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, f"no CSRF token on {page.url}: {page.text[:300]}"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    """Log ``client`` in through the login form (its CSRF token included); the answer to the POST."""
    form = await client.get("/login")
    return await client.post("/login", data={"csrf": csrf_of(form), "name": name, "password": password, "next": "/"})
