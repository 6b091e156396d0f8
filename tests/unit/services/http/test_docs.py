"""The HTTP services' ``/docs`` load nothing from outside the service (CONTRACT §14): Swagger UI's files are
served by the service itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.gateway.app import create_app as gateway_app
from services.query_api.app import create_app as query_api_app
from services.settings import Settings
from services.view_relay.app import create_app as view_relay_app

APPS: list[Callable[[Settings], Any]] = [gateway_app, query_api_app, view_relay_app]


async def _get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path)


@pytest.mark.parametrize("factory", APPS, ids=lambda f: f.__module__)
def test_docs_are_served_from_the_service_itself(factory: Callable[[Settings], Any]) -> None:
    app = factory(Settings())  # built, not started: the docs need nothing else
    page = asyncio.run(_get(app, "/docs"))
    assert page.status_code == 200 and "swagger-ui" in page.text
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN
    for url in urls:
        if url != "/openapi.json":
            assert asyncio.run(_get(app, url)).status_code == 200, url
    assert asyncio.run(_get(app, "/redoc")).status_code == 404  # ReDoc would need a CDN
    # Only the files the page uses: not the package's demo page (which fetches from the internet) nor the rest.
    for other in ("index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "../__init__.py"):
        assert asyncio.run(_get(app, f"/docs/static/{other}")).status_code == 404, other
    spec = asyncio.run(_get(app, "/openapi.json"))
    assert spec.status_code == 200 and "/docs" not in spec.json()["paths"]
