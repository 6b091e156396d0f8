"""Reads that never write (CONTRACT §13, ``RENKOU_ACCESS_LOG=kafka``): the query API reads in read-only
transactions, each read's entries are on the access-log topic before its answer, and the relay chains them into
``access_log`` — once, in order, verifiable — a moment later. Real Kafka, real PostgreSQL.

The read connections here are the primary's, made read-only (``default_transaction_read_only``): what holds on
them holds on a standby, where ``tests/integration/test_pg_failover.py`` reads for real.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from events.examples import CITIZENS, example_events
from services.access_log.database import AccessEntry, canonical_body
from services.access_log.topic import apply_batch
from services.db.dsn import asyncpg_dsn
from services.dead_letters import Rejected
from services.grants import GRANTABLE_SECTIONS, revoke_grant
from services.operations.audit import verify_chains
from services.query_api.app import create_app
from services.settings import Settings
from tests.support.infra import Endpoints
from tests.support.projector import settings_for
from tests.support.query_api import grant, headers, project
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

MOTHER, CHILD = CITIZENS["mother"], CITIZENS["child"]
VISIBLE_WITHIN_S = 15.0


@dataclass
class Setup:
    database_url: str
    settings: Settings
    token: str


@pytest.fixture(scope="module")
async def setup(infra: Endpoints) -> AsyncIterator[Setup]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    history = sorted(example_events().values(), key=lambda e: datetime.fromisoformat(str(e["occurred_at"])))
    await project(db, history)
    token = await grant(db, "standby-reader", GRANTABLE_SECTIONS, ["audit"])
    settings = settings_for(infra.kafka_bootstrap, db, ns).model_copy(update={"access_log": "kafka"})
    try:
        yield Setup(db, settings, token)
    finally:
        await databases.drop_all()


@pytest.fixture
async def client(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(setup.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://query", timeout=30) as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def _entries(database_url: str, request_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT citizen_id, endpoint, sections FROM access_log WHERE request_id = $1 ORDER BY citizen_id",
            uuid.UUID(request_id),
        )
        return rows
    finally:
        await conn.close()


async def _wait_entries(database_url: str, request_id: str, count: int) -> tuple[list[asyncpg.Record], float]:
    started = time.monotonic()
    while True:
        rows = await _entries(database_url, request_id)
        if len(rows) >= count or time.monotonic() - started > VISIBLE_WITHIN_S:
            return rows, time.monotonic() - started
        await asyncio.sleep(0.02)


async def test_a_read_writes_nothing_and_its_entries_reach_the_chains_through_kafka(
    setup: Setup, client: httpx.AsyncClient
) -> None:
    ctx = client.app.state.renkou  # type: ignore[attr-defined]
    async with ctx.lease.connection() as conn:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"  # reads cannot write
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgresql": "ok", "kafka": "ok"}, ready.text
    answered = time.monotonic()
    got = await client.get(f"/v1/residents/{MOTHER}", headers=headers(setup.token, "audit"))
    assert got.status_code == 200, got.text
    request_id = got.headers["X-Request-ID"]
    relatives = {m["citizen_id"] for m in got.json()["family"]["household_members"]} - {MOTHER}
    relatives |= {c["citizen_id"] for c in got.json()["family"]["children"] if c.get("citizen_id")}
    rows, waited = await _wait_entries(setup.database_url, request_id, 1 + len(relatives))
    print(f"access-log entries visible {time.monotonic() - answered:.3f}s after the answer (polled {waited:.3f}s)")
    by_citizen = {r["citizen_id"]: r for r in rows}
    assert set(by_citizen) == {MOTHER, *relatives}, rows
    assert by_citizen[MOTHER]["endpoint"] == "resident"
    assert all(by_citizen[r]["endpoint"] == "family" for r in relatives)
    conn = await asyncpg.connect(asyncpg_dsn(setup.database_url))
    try:
        report = await verify_chains(conn, MOTHER)
    finally:
        await conn.close()
    assert report.intact and report.access_links >= 1, report
    assert CHILD in relatives


async def test_statistics_are_computed_on_the_reading_side_and_recorded_on_the_primary(
    setup: Setup, client: httpx.AsyncClient
) -> None:
    got = await client.get("/v1/statistics/population?region_code=5101", headers=headers(setup.token, "audit"))
    assert got.status_code == 200, got.text
    conn = await asyncpg.connect(asyncpg_dsn(setup.database_url))
    try:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM aggregate_reads WHERE request_id = $1", uuid.UUID(got.headers["X-Request-ID"])
        )
    finally:
        await conn.close()
    assert recorded == 1


async def test_a_revoked_grant_is_refused_on_the_reading_connection(setup: Setup, client: httpx.AsyncClient) -> None:
    token = await grant(setup.database_url, "soon-revoked", ["identity"], ["audit"])
    assert (await client.get(f"/v1/residents/{CHILD}", headers=headers(token, "audit"))).status_code == 200
    conn = await asyncpg.connect(asyncpg_dsn(setup.database_url))
    try:
        await revoke_grant(conn, "soon-revoked")
    finally:
        await conn.close()
    refused = await client.get(f"/v1/residents/{CHILD}", headers=headers(token, "audit"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked", refused.text


async def test_without_kafka_a_read_is_refused_and_nothing_leaves(setup: Setup) -> None:
    closed = f"127.0.0.1:{_closed_port()}"
    settings = setup.settings.model_copy(update={"kafka_bootstrap": closed})
    app = create_app(settings, access_log_timeout=1.0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://query", timeout=30) as c:
            got = await c.get(f"/v1/residents/{MOTHER}", headers=headers(setup.token, "audit"))
            ready = await c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["unavailable"] == ["kafka"], ready.text
    assert got.status_code == 503 and got.json()["error"]["code"] == "access_log_unavailable", got.text
    assert "household" not in got.text and MOTHER not in got.text.replace(got.json()["error"]["message"], "")


def _closed_port() -> int:
    from services.infra.ports import free_port

    return free_port()


@dataclass
class _Record:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def _entry(citizen_id: str) -> tuple[bytes, bytes]:
    entry = AccessEntry(uuid.uuid4(), "standby-reader", "audit", ("identity",), "resident", datetime.now(UTC))
    return citizen_id.encode(), canonical_body(entry, citizen_id)


async def test_a_batch_delivered_twice_is_chained_once_and_a_bad_record_is_dead_lettered(setup: Setup) -> None:
    citizen = CITIZENS["elder"]
    good = [_Record(i, *_entry(citizen)) for i in range(3)]
    forged_key, forged_value = _entry(citizen)
    bad = [
        _Record(3, b"x", b"not json"),
        _Record(4, forged_key, forged_value.replace(b"{", b"{ ", 1)),  # JSON, but not the canonical bytes
        _Record(5, CHILD.encode(), forged_value),  # a key that is not its entry's citizen
    ]
    last = _Record(6, *_entry(citizen))
    topic = f"test-{uuid.uuid4().hex[:8]}"
    letters: list[Rejected] = []

    async def reject(rejected: list[Rejected]) -> None:
        letters.extend(rejected)

    conn = await asyncpg.connect(asyncpg_dsn(setup.database_url))
    try:
        before = await conn.fetchval("SELECT count(*) FROM access_log WHERE citizen_id = $1", citizen)
        first = await apply_batch(conn, topic, 0, [*good, *bad, last], reject=reject)
        again = await apply_batch(conn, topic, 0, [*good, *bad, last], reject=reject)  # a redelivery
        after = await conn.fetchval("SELECT count(*) FROM access_log WHERE citizen_id = $1", citizen)
        stored = await conn.fetchval("SELECT next_offset FROM access_log_offsets WHERE topic = $1", topic)
        report = await verify_chains(conn, citizen)
        # Offsets 7-9 left the topic before the relay reached them: chained they cannot be, counted they are.
        late = await apply_batch(conn, topic, 0, [_Record(10, *_entry(citizen))], reject=reject)
    finally:
        await conn.close()
    assert (late.chained, late.gap, late.next_offset) == (1, 3, 11)
    assert (first.chained, first.skipped, len(first.rejected), first.gap) == (4, 0, 3, 0)
    assert (again.chained, again.skipped, again.rejected) == (0, 7, [])
    assert after - before == 4 and stored == 7 and report.intact
    assert [letter.offset for letter in letters] == [3, 4, 5]
    reasons = [letter.reason for letter in letters]
    assert "not JSON" in reasons[0] and "canonical body" in reasons[1] and "key" in reasons[2], reasons
