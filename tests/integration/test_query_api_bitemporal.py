"""Bitemporal reads agree with the live view: for random histories, ``as_of`` and ``known_at`` at the latest time
rebuild exactly the view the projection serves live (the same pure ``fold``/``render_view`` on both paths).

Histories are fed through the projector's own pipeline (``BatchProjector``) rather than Kafka, so that each
example costs milliseconds; reads go over HTTP to ``python -m services.query_api``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.citizen_id import make_citizen_id
from projections.resident.dates import business_date
from tests.support.infra import Endpoints
from tests.support.operations import AuditorApi, auditor_api
from tests.support.projection_strategies import EVENT_TYPES, days, payload_changes
from tests.support.query_api import CHINA, event, project

pytestmark = pytest.mark.integration

_SERIAL = itertools.count(1)


def fresh_citizen() -> str:
    """A valid citizen ID no other example used (histories never share a subject)."""
    n = next(_SERIAL)
    return make_citizen_id("510107", date(1950, 1, 1) + timedelta(days=n), n % 999 + 1)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One citizen's events in the order their departments recorded them; some recorded days or years late."""
    cid = fresh_citizen()
    out = []
    for _ in range(draw(st.integers(1, 25))):
        event_type = draw(st.sampled_from(EVENT_TYPES))
        on = draw(days)
        delay = draw(st.sampled_from([timedelta(hours=1), timedelta(days=3), timedelta(days=400)]))
        recorded = datetime(on.year, on.month, on.day, 10, 30, tzinfo=CHINA) + delay
        out.append(event(event_type, cid, on, recorded=recorded, **draw(payload_changes(event_type))))
    return out


Api = AuditorApi


@pytest.fixture(scope="module")
async def api(infra: Endpoints) -> AsyncIterator[Api]:
    async with auditor_api(infra, "bitemporal-auditor") as served:
        yield served


def _without_known_at(view: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in view["meta"].items() if k != "known_at"}
    return {**view, "meta": meta}


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories())
async def test_as_of_and_known_at_at_the_latest_time_equal_the_live_view(
    api: Api, history: list[dict[str, Any]]
) -> None:
    await project(api.database_url, history)
    cid = history[0]["citizen_id"]
    now = datetime.now(UTC)
    today = business_date(now).isoformat()
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth, timeout=30.0) as client:

        async def read(**params: str) -> dict[str, Any]:
            response = await client.get(f"/v1/residents/{cid}", params=params)
            assert response.status_code == 200, response.text
            view: dict[str, Any] = response.json()
            return view

        live = await read()
        if live["meta"]["as_of"] != today:  # midnight passed between the two clocks: try again tomorrow
            return
        assert await read(as_of=today) == live
        assert _without_known_at(await read(known_at=now.isoformat())) == live
        assert _without_known_at(await read(as_of=today, known_at=now.isoformat())) == live
        batch = await client.post("/v1/residents:batchGet", params={"as_of": today}, json={"citizen_ids": [cid]})
        assert batch.json()["residents"] == [live]
