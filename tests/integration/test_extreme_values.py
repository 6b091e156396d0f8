"""Whatever ``parse_event`` accepts can be stored and read: extreme but valid events through the real pipeline into
real PostgreSQL, then every read of the query API — live, ``as_of``, ``known_at``, ``batchGet``, ``/events``,
``/eligibility`` — without a 500 (CONTRACT §10, "no read answers 500").

Histories are generated from the catalogue's own field types (``tests.unit.events.test_registry``: every payload
field of every event type) with dates, months and timestamps drawn from the whole of the register's range and its edges
(``events.bounds``), offsets from -14:00 to +23:59, and text of every length allowed. They are applied with the
projector's ``BatchProjector`` (no Kafka, so that an example costs milliseconds) and read over HTTP from
``python -m services.query_api``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import bounds, parse_event
from events.citizen_id import make_citizen_id
from events.examples import example_event
from projections.eligibility import POLICY_IDS
from projections.resident import fold
from projections.resident.state import state_to_json_text
from services.db.dsn import asyncpg_dsn
from tests.support.event_strategies import (
    CATALOGUE,
    LIVE,
    REGIONS,
    TYPES,
    payloads,
    recorded_after_births,
    texts,
    timestamps,
)
from tests.support.infra import Endpoints
from tests.support.operations import AuditorApi, auditor_api
from tests.support.query_api import project

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


Api = AuditorApi


@pytest.fixture(scope="module")
async def api(infra: Endpoints) -> AsyncIterator[Api]:
    async with auditor_api(infra, "extreme-auditor") as served:
        yield served


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


async def test_events_archived_before_the_bounds_existed_still_read(api: Api) -> None:
    """A database projected by an older projector may hold events the register's bounds now refuse (timestamps
    at the ends of Python's calendar, which asyncpg even hands back without a time zone): every read still
    answers, leaving such events out of what it folds; a rebuild dead-letters them."""
    raw = example_event("vaccination.recorded")  # its fold reads no timestamp: the old projector applied it
    cid = fresh_citizen(date(1980, 1, 1))
    event = parse_event({**raw, "citizen_id": cid})
    state = fold([event])["health"]
    conn = await asyncpg.connect(asyncpg_dsn(api.database_url))
    try:
        for seq, moment in enumerate(("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", None), start=1):
            body = {**raw, "citizen_id": cid, "event_id": str(uuid4())}
            if moment is not None:
                body["occurred_at"] = moment
            await conn.execute(
                "INSERT INTO projection.event_archive (citizen_id, department, chain_seq, event_id, event_type, "
                "schema_version, occurred_at, recorded_at, topic, kafka_partition, kafka_offset, body, prev_hash, "
                "hash) VALUES ($1, 'health', $2::int, $3, $4, 1, $5, $6, 't', 0, $2::bigint, $7, $8, $8)",
                cid,
                seq,
                UUID(body["event_id"]),
                body["event_type"],
                datetime.fromisoformat(body["occurred_at"]),
                event.recorded_at,
                json.dumps(body, ensure_ascii=False).encode(),
                bytes(32),
            )
        await conn.execute(
            "INSERT INTO projection.sections (citizen_id, department, state, event_count, last_event_at, chain_seq, "
            "chain_head) VALUES ($1, 'health', $2::jsonb, 3, $3, 3, $4)",
            cid,
            state_to_json_text(state),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
            bytes(32),
        )
    finally:
        await conn.close()
    resident = f"/v1/residents/{cid}"
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth, timeout=60.0) as client:
        _ok(await client.get(resident), 200)
        events = await client.get(f"{resident}/events")
        _ok(events, 200)
        assert [e["occurred_at"] for e in events.json()["events"]][:2] == [
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ]
        as_of = await client.get(resident, params={"as_of": "2030-01-01"})
        _ok(as_of, 200)
        meta = as_of.json()["meta"]
        assert (meta["event_count"], meta["unreadable_events"]) == (1, 1)  # the one of 9999 is after as_of
        _ok(await client.get(resident, params={"known_at": "2030-01-01T00:00:00Z"}), 200)
        _ok(
            await client.post("/v1/residents:batchGet", params={"as_of": "2030-01-01"}, json={"citizen_ids": [cid]}),
            200,
        )
        for policy in sorted(POLICY_IDS):
            _ok(await client.get(f"{resident}/eligibility", params={"policy": policy, "as_of": "2030-01-01"}), 200)
