"""A PostgreSQL primary with a synchronous hot standby (CONTRACT §13; `renkou up --pg-standby`): SIGKILL the
primary while the gateway takes events and the query API reads, fail over (`renkou failover`): nothing the
gateway acknowledged is lost, the view equals a clean rebuild (`renkou verify`), and reads resume in the same
processes, which were never restarted.

Run alone with ``pytest -m failover``. The two servers are this test's own (own ports and folder); Kafka is the
session's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from events import DEPARTMENTS, make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.gateway.app import create_app as gateway_app
from services.gateway.auth import issue_token
from services.infra.process import InfraError
from services.operations.verify import verify
from services.query_api.app import create_app as query_api_app
from services.settings import Settings
from tests.support.infra import TEST_ANCHOR_KEY, Endpoints
from tests.support.projector import assert_archived_once, running_projector, wait_caught_up
from tests.support.query_api import event, grant, headers, project
from tests.support.stack import create_namespace
from tests.support.standby import Pair, pg_pair, standby_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.failover]

EVENTS = 160
KILL_AFTER = 60
FAIL_OVER_AFTER = 70


@pytest.fixture
def pair(infra: Endpoints) -> Iterator[Pair]:
    if not infra.secured:
        pytest.skip("the failover test runs with the local launchers")
    with pg_pair("test-failover") as made:
        yield made


@pytest.fixture
async def settings(pair: Pair, infra: Endpoints) -> AsyncIterator[Settings]:
    yield Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=SecretStr(pair.layout.database_url),
        topic_namespace=await create_namespace(infra),
        state_dir=pair.layout.state_dir,
        audit_anchor_key_file=TEST_ANCHOR_KEY,
    )


async def test_the_standby_is_synchronous_and_status_shows_both(pair: Pair) -> None:
    rows = {row.name: row for row in await asyncio.to_thread(pair.stack.status)}
    assert rows["postgresql primary"].running
    assert rows["postgresql standby"].running and rows["postgresql standby"].detail == "streaming, sync"


async def test_a_stack_with_a_standby_stops_and_starts_again(pair: Pair) -> None:
    """The primary starts before its standby and must not wait for it (the roles it sets commit locally); then
    the standby catches up and writes wait for it again."""
    assert pair.stack.standby is not None
    pair.stack.standby.stop()
    pair.stack.postgres.stop()
    assert await asyncio.wait_for(asyncio.to_thread(pair.stack.postgres.start), 60)
    assert await asyncio.wait_for(asyncio.to_thread(pair.stack.standby.start), 60)
    conn = await asyncpg.connect(asyncpg_dsn(pair.layout.database_url))
    try:
        await asyncio.wait_for(conn.execute("CREATE TABLE written_after_restart (x int)"), 30)
    finally:
        await conn.close()
    rows = {row.name: row for row in await asyncio.to_thread(pair.stack.status)}
    assert rows["postgresql standby"].detail == "streaming, sync"


async def test_failover_loses_nothing_acknowledged_and_reads_resume(pair: Pair, settings: Settings) -> None:
    url = pair.layout.database_url
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tokens = {d: await issue_token(conn, d, "failover-test") for d in DEPARTMENTS}
    finally:
        await conn.close()
    reader = await grant(url, "failover-reader", ["identity", "hukou"], ["school_enrolment"])
    people = [make_citizen_id("510107", date(2001, 1, 1) + timedelta(days=i), 9) for i in range(EVENTS)]
    answers: list[tuple[str, int]] = []
    reads: list[int] = []
    last_before: tuple[dict[str, object], object] = ({}, None)
    primary_pid = pair.stack.postgres.pid()
    assert primary_pid is not None
    gateway, query_api = gateway_app(settings), query_api_app(settings)
    async with (
        running_projector(settings),
        gateway.router.lifespan_context(gateway),
        query_api.router.lifespan_context(query_api),
    ):
        post = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway", timeout=60)
        read = httpx.AsyncClient(transport=httpx.ASGITransport(app=query_api), base_url="http://query", timeout=60)
        async with post, read:
            for i, cid in enumerate(people):
                if i == KILL_AFTER:
                    os.kill(primary_pid, signal.SIGKILL)  # our own primary, by its postmaster's PID
                if i == FAIL_OVER_AFTER:
                    done = await asyncio.to_thread(pair.stack.failover)
                    assert any("promoted" in line for line in done), done
                day = date(2001, 1, 1) + timedelta(days=i)
                body = event("birth.registered", cid, day)
                response = await post.post(
                    "/v1/events", json=body, headers={"Authorization": f"Bearer {tokens['public_security']}"}
                )
                answers.append((body["event_id"], response.status_code))
                if i == KILL_AFTER - 1:
                    last_before = (body, response.json())
                if i % 10 == 9:
                    got = await read.get(f"/v1/residents/{people[i - 9]}", headers=headers(reader, "school_enrolment"))
                    reads.append(got.status_code)
            # The gateway's record of the last event it acknowledged before the kill was committed on the standby
            # too (synchronous replication): sent again, it is recognised, not published twice.
            again = await post.post(
                "/v1/events", json=last_before[0], headers={"Authorization": f"Bearer {tokens['public_security']}"}
            )
            assert again.status_code == 200 and again.json() == last_before[1], again.text
            await wait_caught_up(settings, wait_s=180)
            # Reads resume in the same process (never restarted): the resident the first event created.
            final = await read.get(f"/v1/residents/{people[0]}", headers=headers(reader, "school_enrolment"))
            assert final.status_code == 200, final.text
    # Between the kill and the promotion the gateway answers 503 (try again); before and after, 202.
    assert {code for _, code in answers} <= {202, 503}, answers
    assert all(code == 202 for _, code in answers[:KILL_AFTER]) and all(code == 202 for _, code in answers[-60:])
    # A read is answered from the database (200, or 404 for a resident not projected yet), never refused, once
    # the standby is promoted; before that, the query API says 503.
    assert {code for code in reads} <= {200, 404, 503} and {code for code in reads[-6:]} <= {200, 404}, reads
    accepted = [eid for eid, code in answers if code == 202]
    print(f"failover: {len(accepted)} of {EVENTS} events answered 202, the rest 503; reads {reads}")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SHOW port") == str(pair.layout.pg_standby_port)  # the promoted standby
    finally:
        await conn.close()
    await assert_archived_once(url, accepted)
    checked = await verify(settings, limit=5)
    assert checked.identical, [d.describe() for d in checked.comparison.differences]
    # The old primary is fenced: our launcher will not start it, and started by hand it would come up read-only.
    assert (pair.stack.postgres.data_dir / "standby.signal").exists()
    with pytest.raises(InfraError, match="fenced"):
        pair.stack.postgres.start()


async def test_reads_come_from_the_standby_and_their_entries_reach_the_primary(pair: Pair, settings: Settings) -> None:
    """RENKOU_ACCESS_LOG=kafka: the query API reads the view on the standby (a server in recovery, which cannot
    write), each read's entries go through Kafka, and the relay chains them on the primary."""
    url = pair.layout.database_url
    people = [make_citizen_id("510107", date(1990, 1, 1) + timedelta(days=i), 7) for i in range(5)]
    await project(
        url, [event("birth.registered", cid, date(1990, 1, 1) + timedelta(days=i)) for i, cid in enumerate(people)]
    )
    reader = await grant(url, "standby-reader", ["identity", "hukou"], ["school_enrolment"])
    standby_only = pair.standby_url
    reading = settings.model_copy(update={"access_log": "kafka", "read_database_url": SecretStr(standby_only)})
    await standby_caught_up(pair)  # the events and the grant, applied there
    app = query_api_app(reading)
    async with app.router.lifespan_context(app):
        ctx = app.state.renkou
        async with ctx.lease.connection() as conn:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is True
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query", timeout=60)
        async with client:
            answers = [
                await client.get(f"/v1/residents/{cid}", headers=headers(reader, "school_enrolment")) for cid in people
            ]
        assert [a.status_code for a in answers] == [200] * len(people), [a.text for a in answers]
        ids = [uuid.UUID(a.headers["X-Request-ID"]) for a in answers]
        started = asyncio.get_running_loop().time()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            while True:
                logged = await conn.fetchval("SELECT count(*) FROM access_log WHERE request_id = ANY($1::uuid[])", ids)
                if logged == len(people) or asyncio.get_running_loop().time() - started > 30:
                    break
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
    assert logged == len(people)


async def test_while_the_standby_is_down_writes_wait_and_standby_lost_lets_them_go_on(pair: Pair) -> None:
    """Synchronous replication: a commit waits for the standby, so a lost standby stops writes (RPO 0) until the
    operator says it is lost; starting it again makes it synchronous again."""
    assert pair.stack.standby is not None
    conn = await asyncpg.connect(asyncpg_dsn(pair.layout.database_url))
    try:
        await asyncio.wait_for(conn.execute("CREATE TABLE while_standby_down (x int)"), 30)  # while it streams
        with pytest.raises(InfraError, match="not lost"):  # a standby that streams is not given up
            await asyncio.to_thread(pair.stack.release_standby)
        pair.stack.standby.stop()
        rows = {row.name: row for row in await asyncio.to_thread(pair.stack.status)}
        assert "writes wait for it" in rows["postgresql standby"].detail, rows["postgresql standby"]
        write = asyncio.ensure_future(conn.execute("INSERT INTO while_standby_down VALUES (1)"))
        done, _ = await asyncio.wait([write], timeout=3)
        assert not done, "a commit did not wait for the synchronous standby"
        released = await asyncio.to_thread(pair.stack.release_standby)
        assert "no longer waits" in released[0], released
        await asyncio.wait_for(write, 30)  # the waiting commit goes through
        await asyncio.wait_for(conn.execute("INSERT INTO while_standby_down VALUES (2)"), 10)
    finally:
        await conn.close()
    assert await asyncio.to_thread(pair.stack.standby.start)  # catches up and is synchronous again
    rows = {row.name: row for row in await asyncio.to_thread(pair.stack.status)}
    assert rows["postgresql standby"].detail == "streaming, sync"
