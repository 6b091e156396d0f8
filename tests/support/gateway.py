"""The gateway served in-process, its lifespan running, for the tests that publish through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.gateway.app import create_app
from services.settings import Settings

BASE_URL = "http://gateway"


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[httpx.ASGITransport]:
    """The gateway app with its lifespan running, and a transport that reaches it in-process."""
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app with its lifespan running, and a client talking to it in-process."""
    async with running_gateway(settings) as transport, httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c
