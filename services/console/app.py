"""Composition root of the web console (CONTRACT §14): settings → database pool, sessions, jobs, pages.

Server-rendered pages (Jinja2, autoescaped) with htmx for the parts that refresh themselves (status, a job's
progress); every asset is served by the console itself (``static/``, htmx vendored with its licence), and the
Content-Security-Policy allows nothing else: a browser on a closed government network loads the whole console.

The console connects to PostgreSQL as ``renkou_operator`` (never the owner: replay, verify and swap run in a child
process, ``services.console.job``) and to Kafka as the ``operator`` principal (status, re-drive). Nothing connects
at import time or in ``create_app``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from opentelemetry.trace import TracerProvider
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services import telemetry
from services.console import pages
from services.console.citizen_ids import mask_citizen_ids
from services.console.context import ConsoleContext
from services.console.jobs import JobRunner
from services.console.labels import label
from services.console.sessions import LoginThrottle, SessionStore
from services.db import roles as db_roles
from services.http.readiness import check_readiness
from services.operations.base import dsn
from services.query_api.citizens import verifier_for
from services.settings import Settings, get_settings

__all__ = ["create_app"]

HERE = Path(__file__).resolve().parent
log = logging.getLogger("renkou.console")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeaders(BaseHTTPMiddleware):
    """Every answer: the CSP and its companions; pages (not the static assets) are never cached."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


class PagesOnOwnNames:
    """Starlette's ``TrustedHostMiddleware`` for everything but the probes: a kubelet or a load balancer asks
    ``/healthz`` and ``/readyz`` by the pod's address, which no page is served under."""

    PROBES = ("/healthz", "/readyz")

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.PROBES:
            await self.app(scope, receive, send)
        else:
            await self.checked(scope, receive, send)


def allowed_hosts(settings: Settings) -> list[str]:
    """The names the console answers to (``Host``): loopback, the bind address, and ``RENKOU_CONSOLE_HOSTS``. A page
    elsewhere that rebinds its own name to 127.0.0.1 sends its own name, and is refused (DNS rebinding)."""
    extra = [h.strip() for h in settings.console_hosts.split(",") if h.strip()]
    names = ["127.0.0.1", "localhost", "::1", settings.bind_host, *extra]
    if not extra and settings.bind_host != "localhost" and ipaddress.ip_address(settings.bind_host).is_unspecified:
        return ["*"]  # listening everywhere with no name given: whatever name the machine is reached by
    # Starlette keeps an IPv6 literal's brackets (Host: [::1]:8004 → "[::1]"): both spellings are the same name.
    return [*names, *(f"[{n}]" for n in names if ":" in n)]


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["label"] = label
    env.filters["mask_ids"] = mask_citizen_ids
    return env


def create_app(
    settings: Settings | None = None,
    *,
    pool_size: int = 4,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The console for ``settings``, with at most ``pool_size`` database connections."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn(settings, db_roles.OPERATOR),
            min_size=0,
            max_size=pool_size,
            timeout=5,
            server_settings={"application_name": "renkou-console", "timezone": "UTC"},
        )
        ctx = ConsoleContext(
            settings=settings,
            pool=pool,
            sessions=SessionStore(),
            throttle=LoginThrottle(),
            templates=templates(),
            verifier=verifier_for(settings),
        )
        ctx.jobs = JobRunner(settings.environment(), on_end=ctx.job_ended)
        app.state.console = ctx
        try:
            yield
        finally:
            await ctx.jobs.stop()
            await pool.close()

    app = FastAPI(title="renkou console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        ctx: ConsoleContext = request.app.state.console

        async def postgresql() -> Any:
            async with ctx.pool.acquire() as conn:
                return await conn.fetchval("SELECT 1")

        readiness = await check_readiness({"postgresql": postgresql})
        return JSONResponse(readiness.body(), readiness.status_code, headers=readiness.headers)

    pages.install(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PagesOnOwnNames, allowed_hosts=allowed_hosts(settings))
    telemetry.instrument_fastapi(app, telemetry.tracer_provider("renkou-console", tracer_provider))
    return app
