"""``/readyz`` of a service that has not made its clients yet: unavailable, each dependency named, come back later."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.gateway.app import create_app as gateway_app
from services.http.readiness import Readiness
from services.settings import Settings
from services.view_relay.app import create_app as view_relay_app

STARTING = {
    "status": "unavailable",
    "checks": {"postgresql": "unavailable (starting)", "kafka": "unavailable (starting)"},
    "unavailable": ["postgresql", "kafka"],
}


def test_a_service_starting_is_not_ready_and_says_so() -> None:
    readiness = Readiness.starting("postgresql", "kafka")
    assert (readiness.ready, readiness.status_code, readiness.body()) == (False, 503, STARTING)
    assert readiness.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("factory", [gateway_app, view_relay_app], ids=lambda f: f.__module__)
def test_a_service_built_but_not_started_answers_readyz_with_503(factory: Callable[[Settings], Any]) -> None:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=factory(Settings()))  # built, not started: no client made yet
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.get("/readyz")

    answer = asyncio.run(get())
    assert (answer.status_code, answer.json()) == (503, STARTING)
    assert answer.headers["retry-after"].isdigit()
