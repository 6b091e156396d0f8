"""Whatever ``parse_event`` accepts can be stored and read: extreme but valid events through the real pipeline into
real PostgreSQL, then every read of the query API — live, ``as_of``, ``known_at``, ``batchGet``, ``/events``,
``/eligibility`` — without a 500 (CONTRACT §10, "no read answers 500").

Histories are generated from the catalogue's own field types (``tests.unit.test_events``: every payload field of
every event type) with dates, months and timestamps drawn from the whole of the register's range and its edges
(``events.bounds``), offsets from -14:00 to +23:59, and text of every length allowed. They are applied with the
projector's ``BatchProjector`` (no Kafka, so that an example costs milliseconds) and read over HTTP from
``python -m services.query_api``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import bounds, parse_event
from events.citizen_id import make_citizen_id
from projections.eligibility import POLICY_IDS
from services.grants import GRANTABLE_SECTIONS
from tests.integration.conftest import Databases
from tests.support.infra import Endpoints
from tests.support.query_api import grant, headers, project, running_query_api
from tests.unit.test_events import CATALOGUE, LIVE, REGIONS, TYPES, payloads, recorded_after_births, texts, timestamps

pytestmark = pytest.mark.integration

_SERIAL = itertools.count(1)
BIRTHS = [bounds.EARLIEST_DATE, date(1949, 10, 1), date(2000, 2, 29), bounds.LATEST_DATE]

# Query parameters at and beyond the edges of what the query API accepts: a 422 for those beyond, never a 500.
AS_OF_EDGES = ["1869-12-31", "1870-01-01", "2199-12-31", "2200-01-01", "9998-12-31", "9999-12-31"]
KNOWN_AT_EDGES = [
    "0001-01-01T00:00:00+14:00",
    "1870-01-01T00:00:00+14:00",  # 1869 in China
    "1869-12-31T16:00:00Z",  # 1870-01-01 in China
    "2199-12-31T23:59:59.999999+08:00",
    "9998-12-31T23:59:59+23:59",
    "9998-12-31T23:59:59-14:00",  # the year 9999 in China
    "9999-12-31T23:59:59-23:59",
]
ANSWERED = (200, 404)  # the resident, or nothing known about them then
EDGE = (200, 404, 422)  # or, for a parameter beyond what a read accepts, refused — never a 500


def fresh_citizen(born: date) -> str:
    """A citizen ID no other example used: one sequence number per example, the division cycling past 999."""
    n = next(_SERIAL)
    return make_citizen_id(LIVE[(n // 1000) % len(LIVE)], born, n % 1000)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One citizen's events (of every department), each valid, with values from the edges of the register."""
    cid = fresh_citizen(draw(st.sampled_from(BIRTHS)))
    events = []
    for _ in range(draw(st.integers(1, 12))):
        event_type = draw(st.sampled_from(TYPES))
        department = CATALOGUE[event_type][0]
        record = {
            "event_id": str(uuid4()),
            "event_type": event_type,
            "schema_version": 1,
            "citizen_id": cid,
            "occurred_at": draw(timestamps()),
            "recorded_at": draw(timestamps()),
            "source": {
                "department": department,
                "system": draw(texts(64)),
                "region_code": draw(st.sampled_from(REGIONS)),
            },
            "payload": draw(payloads(event_type)),
        }
        events.append(recorded_after_births(record))
    for event in events:
        parse_event(event)  # the premise: every one of them is accepted
    return events


@dataclass
class Api:
    url: str
    database_url: str
    auth: dict[str, str]


@pytest.fixture(scope="module")
async def api(infra: Endpoints) -> AsyncIterator[Api]:
    databases = Databases(infra)
    db = await databases.create()
    token = await grant(db, "extreme-auditor", GRANTABLE_SECTIONS, ["audit"])
    try:
        async with running_query_api(db) as server:
            yield Api(server.url, db, headers(token, "audit"))
    finally:
        await databases.drop_all()


def _ok(response: httpx.Response, *allowed: int) -> None:
    assert response.status_code in allowed, f"{response.request.url} → {response.status_code}: {response.text[:500]}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories(), data=st.data())
async def test_extreme_valid_events_project_and_every_read_answers(
    api: Api, history: list[dict[str, Any]], data: st.DataObject
) -> None:
    assert await project(api.database_url, history) == len(history)
    cid = history[0]["citizen_id"]
    event_days = sorted({bounds.business_date(parse_event(e).occurred_at).isoformat() for e in history})
    recorded = sorted({e["recorded_at"] for e in history})
    # The history's own dates and instants must be answered; the edges may be refused.
    as_ofs = [*((d, ANSWERED) for d in (*event_days[:2], event_days[-1])), *((d, EDGE) for d in AS_OF_EDGES)]
    known_ats = [*((k, ANSWERED) for k in (recorded[0], recorded[-1])), *((k, EDGE) for k in KNOWN_AT_EDGES)]
    policy = data.draw(st.sampled_from(sorted(POLICY_IDS)))
    resident = f"/v1/residents/{cid}"
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth, timeout=60.0) as client:

        async def batch(**params: str) -> httpx.Response:
            return await client.post("/v1/residents:batchGet", params=params, json={"citizen_ids": [cid]})

        _ok(await client.get(resident), 200)
        _ok(await client.get(f"{resident}/events"), 200)
        _ok(await client.get(f"{resident}/eligibility", params={"policy": policy}), *ANSWERED)
        for as_of, allowed in as_ofs:
            _ok(await client.get(resident, params={"as_of": as_of}), *allowed)
            _ok(await batch(as_of=as_of), 200, *allowed[2:])
            _ok(await client.get(f"{resident}/eligibility", params={"policy": policy, "as_of": as_of}), *allowed)
        for known_at, allowed in known_ats:
            _ok(await client.get(resident, params={"known_at": known_at}), *allowed)
            as_of = data.draw(st.sampled_from(event_days))
            _ok(await client.get(resident, params={"known_at": known_at, "as_of": as_of}), *allowed)
            _ok(await batch(known_at=known_at), 200, *allowed[2:])
