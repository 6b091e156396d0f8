"""A real PostgreSQL SIGKILLed under running services, and started again.

A throw-away PostgreSQL cluster of this module's own (its own folder and port, started with the project's launcher
and killed by its PIDs — the postmaster and its children, as a crash or an OOM kill does) sits under a gateway
receiving a stream of batches and under a query API process serving reads. While it is down every answer is a
503 in the contract's error shape with ``Retry-After`` (never a 500, never plain text), ``/healthz`` stays 200 and
``/readyz`` names PostgreSQL (the projector's and the view relay's too); once it is back, the same service
instances answer again without a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]
import pytest
from pydantic import SecretStr

from events.examples import CITIZENS, example_event, example_events
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import issue_token
from services.grants import GRANTABLE_SECTIONS
from services.infra.ports import StackLayout, free_port
from services.infra.postgres import PostgresServer
from services.settings import Settings, project_root
from tests.support.asgi import Answer, call
from tests.support.infra import Endpoints
from tests.support.query_api import grant, headers, project, running_query_api

pytestmark = pytest.mark.integration

RECOVERY_S = 60.0


@dataclass
class ThrowAwayPostgres:
    server: PostgresServer
    url: str

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend it started (by PID: only this cluster's)."""
        pid = self.server.pid()
        assert pid is not None, "the throw-away PostgreSQL is not running"
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            process.kill()
        psutil.wait_procs(processes, timeout=30)

    def start(self) -> None:
        assert self.server.start(), "the throw-away PostgreSQL was still running"


@pytest.fixture(scope="module")
async def postgres(infra: Endpoints) -> AsyncIterator[ThrowAwayPostgres]:
    state = project_root() / ".local" / f"outage-postgres-{uuid.uuid4().hex[:8]}"
    # The same role passwords as the test stack's, so that services given the stack's state folder (for their
    # Kafka principals) connect to this server as their own roles too.
    shutil.copytree(db_roles.secrets_dir(infra.state_dir), db_roles.secrets_dir(state))
    layout = StackLayout(
        state_dir=state,
        kafka_port=0,
        controller_port=0,
        pg_port=free_port(),
        pg_user="renkou",
        pg_password="renkou",
        pg_database="renkou",
    )
    server = PostgresServer(layout)
    try:
        await asyncio.to_thread(server.start)
        await upgrade(layout.database_url)
        yield ThrowAwayPostgres(server, layout.database_url)
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(state, ignore_errors=True)


def _unavailable(response: httpx.Response, code: str = "database_unavailable") -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    assert response.headers["Retry-After"].isdigit()
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body


async def _until(ask: Callable[[], Awaitable[httpx.Response]], status: int) -> httpx.Response:
    """Ask until the answer is ``status``; every answer before it must be a proper 503."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        response = await ask()
        if response.status_code == status:
            return response
        assert response.status_code == 503, (response.status_code, response.text[:500])
        assert time.monotonic() < deadline, f"no {status} within {RECOVERY_S:.0f} s of the restart"
        await asyncio.sleep(0.5)


def _event(event_type: str = "student.enrolled") -> dict[str, Any]:
    event = example_event(event_type)
    event["event_id"] = str(uuid.uuid4())
    return event


async def test_the_gateway_answers_503_while_postgresql_is_down_and_recovers_without_a_restart(
    infra: Endpoints, namespace: str, postgres: ThrowAwayPostgres
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(postgres.url))
    try:
        token = await issue_token(conn, "education", "outage test")
    finally:
        await conn.close()
    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=SecretStr(postgres.url),
        topic_namespace=namespace,
        state_dir=infra.state_dir,
    )
    app = create_gateway(settings)
    auth = {"Authorization": f"Bearer {token}"}
    # raise_app_exceptions (httpx's default): an error the gateway did not answer would fail the test here.
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        assert (await client.post("/v1/events", json=_event(), headers=auth)).status_code == 202
        assert (await client.get("/readyz")).status_code == 200

        sent: list[dict[str, Any]] = []
        answers: list[httpx.Response] = []
        streaming = asyncio.Event()
        streaming.set()

        async def stream() -> None:
            while streaming.is_set():
                sent.append({"events": [_event() for _ in range(25)]})
                answers.append(await client.post("/v1/events:batch", json=sent[-1], headers=auth))

        streamer = asyncio.create_task(stream())
        await asyncio.sleep(1.0)
        await asyncio.to_thread(postgres.kill)  # mid-stream
        refused = _event()
        try:
            _unavailable(await client.post("/v1/events", json=refused, headers=auth))
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["unavailable"] == ["postgresql"], ready.text
            assert ready.headers["Retry-After"].isdigit()
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(1.0)
        finally:
            streaming.clear()
            await streamer
        assert answers and all(r.status_code in (200, 503) for r in answers), [r.status_code for r in answers]
        assert answers[0].status_code == 200 and answers[-1].status_code == 503
        for response in answers:
            if response.status_code == 503 and "results" in response.json():  # refused while claiming
                assert response.headers["Retry-After"].isdigit()
                assert {r["status"] for r in response.json()["results"]} <= {202, 503}
            elif response.status_code == 503:  # refused while authenticating
                _unavailable(response)

        await asyncio.to_thread(postgres.start)
        # The same gateway, not restarted: the event refused during the outage is accepted now.
        accepted = await _until(lambda: client.post("/v1/events", json=refused, headers=auth), 202)
        assert accepted.json()["event_id"] == refused["event_id"]
        assert (await client.get("/readyz")).json()["status"] == "ready"
        for batch, response in zip(sent, answers, strict=True):  # the batches refused go through when sent again
            if response.status_code == 503:
                again = await client.post("/v1/events:batch", json=batch, headers=auth)
                assert again.status_code == 200, again.text[:500]


async def test_the_query_api_answers_503_while_postgresql_is_down_and_recovers_without_a_restart(
    postgres: ThrowAwayPostgres,
) -> None:
    history = sorted(example_events().values(), key=lambda e: str(e["occurred_at"]))
    await project(postgres.url, history)
    token = await grant(postgres.url, f"outage-{uuid.uuid4().hex[:6]}", GRANTABLE_SECTIONS, ["audit"])
    auth = headers(token, "audit")
    child, migrant = CITIZENS["child"], CITIZENS["migrant"]

    async with (
        running_query_api(postgres.url) as api,
        httpx.AsyncClient(base_url=api.url, timeout=15.0) as client,
    ):
        reads: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: client.get(f"/v1/residents/{child}", headers=auth),  # the single-read lane
            lambda: client.get(f"/v1/residents/{child}?as_of=2024-06-01", headers=auth),
            lambda: client.post("/v1/residents:batchGet", json={"citizen_ids": [child, migrant]}, headers=auth),
            lambda: client.get(f"/v1/residents/{migrant}/events", headers=auth),
            lambda: client.get("/v1/statistics/population?region_code=5101", headers=auth),
        ]
        for read in reads:
            assert (await read()).status_code == 200
        assert (await client.get("/readyz")).status_code == 200

        await asyncio.to_thread(postgres.kill)
        for _ in range(3):  # every worker, every pooled connection: a 503, never a 500
            for read in reads:
                _unavailable(await read())
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["postgresql"], ready.text
        assert (await client.get("/healthz")).status_code == 200

        await asyncio.to_thread(postgres.start)
        for read in reads:
            await _until(read, 200)
        for _ in range(3):
            for read in reads:
                assert (await read()).status_code == 200
        assert (await client.get("/readyz")).json() == {"status": "ready", "checks": {"postgresql": "ok"}}
        assert psutil.pid_exists(api.pid)  # the same process throughout


async def test_projector_and_view_relay_readiness_follow_postgresql(
    infra: Endpoints, namespace: str, postgres: ThrowAwayPostgres
) -> None:
    from services.projector.app import create_app as create_projector
    from services.view_relay.app import create_app as create_view_relay

    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=SecretStr(postgres.url),
        topic_namespace=namespace,
        state_dir=infra.state_dir,
    )
    projector, relay = create_projector(settings), create_view_relay(settings)

    async def probes(path: str) -> list[Answer]:
        return [await call(projector, "GET", path), await call(relay, "GET", path)]

    async with projector, relay.router.lifespan_context(relay):
        for ready in await probes("/readyz"):
            assert ready.status == 200, ready.body
            assert ready.json() == {"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}

        await asyncio.to_thread(postgres.kill)
        for ready in await probes("/readyz"):
            assert ready.status == 503 and ready.headers["retry-after"].isdigit(), ready.body
            assert ready.json()["unavailable"] == ["postgresql"] and ready.json()["checks"]["kafka"] == "ok"
        assert [live.status for live in await probes("/healthz")] == [200, 200]

        await asyncio.to_thread(postgres.start)
        deadline = time.monotonic() + RECOVERY_S
        while [r.status for r in await probes("/readyz")] != [200, 200]:
            assert time.monotonic() < deadline, [r.body for r in await probes("/readyz")]
            await asyncio.sleep(0.5)


async def test_simulate_rides_out_a_postgresql_outage_and_revokes_its_tokens(
    infra: Endpoints, namespace: str, postgres: ThrowAwayPostgres
) -> None:
    """``renkou simulate``'s pieces against a gateway served by uvicorn: PostgreSQL killed mid-stream and back
    8 s later; every event is accepted in the end, nothing refused, and the run's tokens are revoked."""
    import io

    import uvicorn
    from rich.console import Console

    from services.cli.ingest_cmd import simulate_city, simulation_tokens
    from services.retry import RetryPolicy

    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=SecretStr(postgres.url),
        topic_namespace=namespace,
        gateway_port=free_port(),
        state_dir=infra.state_dir,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_gateway(settings), host="127.0.0.1", port=settings.gateway_port, log_level="error")
    )
    serving = asyncio.create_task(server.serve())
    killed_at: list[float] = []

    async def outage() -> None:
        await asyncio.sleep(2.0)
        killed_at.append(time.monotonic())
        await asyncio.to_thread(postgres.kill)
        await asyncio.sleep(8.0)
        await asyncio.to_thread(postgres.start)

    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        retry = RetryPolicy(deadline_s=120.0)
        started = time.monotonic()
        async with simulation_tokens(settings, retry) as tokens:
            breaking = asyncio.create_task(outage())
            report = await simulate_city(
                settings,
                residents=1500,
                years=20,
                seed=3,
                direct=False,
                tokens=tokens,
                retry=retry,
                stream=Console(file=io.StringIO()),
            )
            await breaking
    finally:
        server.should_exit = True
        await serving
    assert killed_at and started + report.seconds > killed_at[0], "the outage came after the run"
    assert report.events > 0 and report.rejected == 0, report.first_rejections
    assert report.accepted + report.duplicates == report.events
    assert report.last.on_kafka >= report.accepted
    conn = await asyncpg.connect(asyncpg_dsn(postgres.url))
    try:
        rows = await conn.fetch("SELECT revoked_at FROM department_tokens WHERE label LIKE 'renkou simulate %'")
    finally:
        await conn.close()
    assert len(rows) == 4 and all(r["revoked_at"] is not None for r in rows)
