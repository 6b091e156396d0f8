"""The HTTP edges without a database: every outage class injected into every route answers 503 with Retry-After in
the contract's error shape (gateway and query API, FastAPI routes and the single-read lane); a bug is a JSON 500;
no body is read before the token was checked, and a body over the cap is refused (413) without being read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from events.examples import CITIZENS, example_event
from services.gateway import app as gateway_app
from services.gateway import routes as gateway_routes
from services.gateway.errors import ApiError as GatewayApiError
from services.gateway.ingest import Ingestor
from services.gateway.routes import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from services.grants import GRANTABLE_SECTIONS, Grant
from services.outages import RETRY_AFTER_S
from services.query_api.app import create_app as create_query_api
from services.query_api.auth import Authenticator
from services.query_api.context import QueryApiContext
from services.query_api.routes import MAX_BODY_BYTES
from services.settings import Settings
from tests.support.asgi import Answer, call
from tests.support.outages import KAFKA_OUTAGES, NETWORK_OUTAGES, POSTGRESQL_OUTAGES

NOWHERE = Settings(
    database_url=SecretStr("postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none"),
    kafka_bootstrap="127.0.0.1:9",
)
OUTAGES = [*POSTGRESQL_OUTAGES, *KAFKA_OUTAGES, *NETWORK_OUTAGES]
CHILD = CITIZENS["child"]
TOKEN = "rk_c_good"


def _outage_answer(answer: Answer) -> dict[str, Any]:
    assert answer.status == 503, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] in {"database_unavailable", "kafka_unavailable", "service_unavailable"}, body
    assert "retry" in body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# --- the query API ----------------------------------------------------------------------------------------------


class _Lease:
    """A connection lease whose connections fail with ``exc`` (or that must never be asked for one)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.exc: BaseException = AssertionError("the lease was not expected to be used")
        self.taken = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        self.taken += 1
        raise self.exc
        yield  # pragma: no cover


def _grant() -> Grant:
    return Grant("auditor", {"audit": frozenset(GRANTABLE_SECTIONS)}, None, datetime.now(UTC), None)


class _Lookup:
    def __init__(self) -> None:
        self.exc: BaseException | None = None

    async def __call__(self, token: str) -> Grant | None:
        if self.exc is not None:
            raise self.exc
        return _grant() if token == TOKEN else None


@pytest.fixture(scope="module")
async def query_apis() -> AsyncIterator[dict[bool, tuple[FastAPI, _Lease, _Lookup]]]:
    """The query API with and without the single-read lane; no database behind them."""
    apps: dict[bool, tuple[FastAPI, _Lease, _Lookup]] = {}
    async with _query_api(True) as lane, _query_api(False) as routed:
        apps[True], apps[False] = lane, routed
        yield apps


@asynccontextmanager
async def _query_api(fast_lane: bool) -> AsyncIterator[tuple[FastAPI, _Lease, _Lookup]]:
    app = create_query_api(NOWHERE, fast_lane=fast_lane)
    async with app.router.lifespan_context(app):
        ctx: QueryApiContext = app.state.renkou
        lease, lookup = _Lease(ctx.lease.engine), _Lookup()
        ctx.lease = ctx.primary = lease  # type: ignore[assignment]
        ctx.auth = Authenticator(lookup, ttl=0.0)
        yield app, lease, lookup


AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Purpose": "audit"}
QUERY_READS: list[tuple[str, str, list[bytes]]] = [
    ("GET", f"/v1/residents/{CHILD}", []),
    ("GET", f"/v1/residents/{CHILD}?as_of=2024-01-01", []),
    ("POST", "/v1/residents:batchGet", [json.dumps({"citizen_ids": [CHILD]}).encode()]),
    ("GET", f"/v1/residents/{CHILD}/events", []),
    ("GET", f"/v1/residents/{CHILD}/access-log", []),
    ("GET", "/v1/households/510107-00012345", []),
    ("GET", "/v1/statistics/population?region_code=5101", []),
    ("GET", f"/v1/residents/{CHILD}/eligibility?policy=chengdu-2017", []),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_every_query_api_read_answers_an_outage_503(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]], exc: BaseException
) -> None:
    for app, lease, lookup in query_apis.values():
        lease.exc = exc
        for method, path, body in QUERY_READS:
            answer = await call(app, method, path, headers=AUTH, chunks=body)
            assert answer.raised is None, answer.raised  # answered by the outage handler, not re-raised
            _outage_answer(answer)
        # The token lookup itself (before any read) hitting the outage.
        lookup.exc = exc
        try:
            _outage_answer(await call(app, "GET", f"/v1/residents/{CHILD}", headers=AUTH))
            _outage_answer(await call(app, "GET", "/v1/statistics/population?region_code=51", headers=AUTH))
        finally:
            lookup.exc = None


async def test_an_error_raised_from_an_outage_is_503_and_a_bug_a_json_500(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]],
) -> None:
    for app, lease, _ in query_apis.values():
        try:
            raise RuntimeError("wrapped") from ConnectionResetError("reset")
        except RuntimeError as wrapped:
            lease.exc = wrapped
        for method, path, body in QUERY_READS:
            _outage_answer(await call(app, method, path, headers=AUTH, chunks=body))
        lease.exc = ValueError("a bug")
        for method, path, body in QUERY_READS:
            answer = await call(app, method, path, headers=AUTH, chunks=body)
            assert answer.status == 500 and answer.headers["content-type"].startswith("application/json")
            assert answer.json()["error"]["code"] == "internal_error"
            assert "a bug" not in answer.body.decode()  # no internals leave the service


async def test_the_query_api_reads_no_body_before_the_token_was_checked(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]],
) -> None:
    huge = [b"x" * (1024 * 1024)] * 84  # the review's 84 MB
    declared = {"Content-Length": str(84 * 1024 * 1024), "Content-Type": "application/json"}
    for app, lease, _ in query_apis.values():
        lease.exc, lease.taken = AssertionError("no read may start"), 0
        for headers, code in (
            ({}, "missing_token"),
            ({"Authorization": "Bearer rk_c_unknown", "X-Purpose": "audit"}, "unknown_token"),
            ({"Authorization": f"Bearer {TOKEN}"}, "purpose_required"),
        ):
            for path in ("/v1/residents:batchGet", f"/v1/residents/{CHILD}"):
                method = "POST" if path.endswith("batchGet") else "GET"
                answer = await call(app, method, path, headers={**declared, **headers}, chunks=huge)
                assert answer.status in (400, 401), answer.body
                assert answer.json()["error"]["code"] == code
                assert answer.bytes_read == 0, (path, code)
        assert lease.taken == 0


async def test_a_query_api_body_over_the_cap_is_413_without_being_read(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]],
) -> None:
    for app, lease, _ in query_apis.values():
        lease.exc, lease.taken = AssertionError("no read may start"), 0
        # Declared too large: refused before a byte is read.
        declared = {**AUTH, "Content-Length": str(MAX_BODY_BYTES + 1)}
        answer = await call(app, "POST", "/v1/residents:batchGet", headers=declared, chunks=[b"x" * 65536] * 8)
        assert (answer.status, answer.json()["error"]["code"]) == (413, "body_too_large")
        assert answer.bytes_read == 0
        assert answer.json()["error"]["details"] == {"limit_bytes": MAX_BODY_BYTES}
        # Chunked, no length (or a lying one): read only until it passes the cap.
        chunk = 16 * 1024
        answer = await call(app, "POST", "/v1/residents:batchGet", headers=AUTH, chunks=[b" " * chunk] * 1000)
        assert answer.status == 413
        assert MAX_BODY_BYTES < answer.bytes_read <= MAX_BODY_BYTES + chunk
        lying = {**AUTH, "Content-Length": "10"}
        answer = await call(app, "POST", "/v1/residents:batchGet", headers=lying, chunks=[b" " * chunk] * 1000)
        assert answer.status == 413 and answer.bytes_read <= MAX_BODY_BYTES + chunk
        assert lease.taken == 0


def _verbose_batch(count: int) -> bytes:
    """``count`` citizen IDs written as wastefully as JSON allows: every character escaped, one per line."""
    escaped = '"' + "".join(f"\\u{ord(c):04x}" for c in CHILD) + '"'
    return (
        '{\n    "citizen_ids": [\n' + ",\n".join("        " + escaped for _ in range(count)) + "\n    ]\n}"
    ).encode()


async def test_a_full_batch_written_wastefully_fits_under_the_cap(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]],
) -> None:
    body = _verbose_batch(1000)
    assert json.loads(body) == {"citizen_ids": [CHILD] * 1000}
    assert len(body) < MAX_BODY_BYTES
    app, lease, _ = query_apis[True]
    lease.exc = ConnectionRefusedError("the read itself is not what this test is about")
    answer = await call(app, "POST", "/v1/residents:batchGet", headers=AUTH, chunks=[body[:70000], body[70000:]])
    assert answer.status == 503 and answer.bytes_read == len(body)  # read whole, past validation, to the read
    bad = await call(app, "POST", "/v1/residents:batchGet", headers=AUTH, chunks=[b'{"citizen_ids": []}'])
    assert (bad.status, bad.json()["error"]["code"]) == (422, "invalid_request")
    assert bad.json()["error"]["details"][0]["location"] == ["body", "citizen_ids"]
    broken = await call(app, "POST", "/v1/residents:batchGet", headers=AUTH, chunks=[b"{not json"])
    assert (broken.status, broken.json()["error"]["code"]) == (422, "invalid_request")


async def test_query_api_liveness_and_readiness_without_a_database(
    query_apis: dict[bool, tuple[FastAPI, _Lease, _Lookup]],
) -> None:
    app, _, _ = query_apis[True]
    live = await call(app, "GET", "/healthz")
    assert (live.status, live.json()) == (200, {"status": "ok"})
    ready = await call(app, "GET", "/readyz")
    assert ready.status == 503 and ready.headers["retry-after"] == str(RETRY_AFTER_S)
    body = ready.json()
    assert body["status"] == "unavailable" and body["unavailable"] == ["postgresql"]
    assert body["checks"]["postgresql"].startswith("unavailable (")


# --- the gateway ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[FastAPI]:
    """The gateway with nothing behind it (its lifespan tries Kafka once and serves anyway)."""
    app = gateway_app.create_app(NOWHERE)
    async with app.router.lifespan_context(app):
        yield app


class _Connection:
    async def __aenter__(self) -> object:
        return object()

    async def __aexit__(self, *exc: object) -> None:
        return None


def _department(monkeypatch: pytest.MonkeyPatch, outcome: str | BaseException) -> list[str]:
    """Authenticate every token as ``outcome`` (a department) or fail with it; return the tokens looked up."""
    seen: list[str] = []

    async def department_of_token(conn: object, token: str) -> str:
        seen.append(token)
        if isinstance(outcome, BaseException):
            raise outcome
        if token != "rk_d_good":
            raise GatewayApiError(401, "invalid_token", "unknown department token")
        return outcome

    monkeypatch.setattr(gateway_routes, "driver_connection", lambda engine: _Connection())
    monkeypatch.setattr(gateway_routes, "department_of_token", department_of_token)
    return seen


GOOD = {"Authorization": "Bearer rk_d_good", "Content-Type": "application/json"}


def _single() -> bytes:
    return json.dumps(example_event("student.enrolled")).encode()


def _batch() -> bytes:
    return json.dumps({"events": [example_event("student.enrolled"), example_event("student.graduated")]}).encode()


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_every_gateway_route_answers_an_outage_503(
    gateway: FastAPI, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    # While authenticating (PostgreSQL's department_tokens).
    _department(monkeypatch, exc)
    _outage_answer(await call(gateway, "POST", "/v1/events", headers=GOOD, chunks=[_single()]))
    _outage_answer(await call(gateway, "POST", "/v1/events:batch", headers=GOOD, chunks=[_batch()]))

    # While claiming and publishing (the review's asyncpg InternalClientError at COMMIT).
    async def transaction(self: Ingestor, candidates: list[Any]) -> Any:
        raise exc

    _department(monkeypatch, "education")
    monkeypatch.setattr(Ingestor, "_transaction", transaction)
    single = await call(gateway, "POST", "/v1/events", headers=GOOD, chunks=[_single()])
    assert "repeats are safe" in _outage_answer(single)["message"]
    batch = await call(gateway, "POST", "/v1/events:batch", headers=GOOD, chunks=[_batch()])
    assert batch.status == 503 and batch.headers["retry-after"] == str(RETRY_AFTER_S)
    assert [r["status"] for r in batch.json()["results"]] == [503, 503]


async def test_a_gateway_bug_is_a_json_500_never_plain_text(gateway: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    _department(monkeypatch, KeyError("a bug"))
    for path, body in (("/v1/events", _single()), ("/v1/events:batch", _batch())):
        answer = await call(gateway, "POST", path, headers=GOOD, chunks=[body])
        assert answer.status == 500 and answer.headers["content-type"].startswith("application/json")
        assert answer.json() == {
            "error": {"code": "internal_error", "message": "internal error; it has been logged", "details": []}
        }
    metrics = (await call(gateway, "GET", "/metrics")).body.decode()
    for route in ("/v1/events", "/v1/events:batch"):  # a bug escaped every handler: counted as the 500 it became
        assert f'renkou_gateway_request_seconds_count{{method="POST",route="{route}",status="500"}} 1.0' in metrics


async def test_the_gateway_reads_no_body_before_the_token_was_checked(
    gateway: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _department(monkeypatch, "education")
    huge = [b"x" * (1024 * 1024)] * 84
    for path in ("/v1/events", "/v1/events:batch"):
        for headers, code in (({}, "unauthenticated"), ({"Authorization": "Bearer rk_d_other"}, "invalid_token")):
            declared = {**headers, "Content-Length": str(84 * 1024 * 1024)}
            answer = await call(gateway, "POST", path, headers=declared, chunks=huge)
            assert (answer.status, answer.json()["error"]["code"]) == (401, code)
            assert answer.bytes_read == 0
    assert seen == ["rk_d_other", "rk_d_other"]


@pytest.mark.parametrize(("path", "limit"), [("/v1/events", MAX_EVENT_BYTES), ("/v1/events:batch", MAX_BATCH_BYTES)])
async def test_a_gateway_body_over_the_cap_is_413_without_being_read(
    gateway: FastAPI, monkeypatch: pytest.MonkeyPatch, path: str, limit: int
) -> None:
    _department(monkeypatch, "education")
    declared = {**GOOD, "Content-Length": str(limit + 1)}
    answer = await call(gateway, "POST", path, headers=declared, chunks=[b"x" * (1024 * 1024)] * 20)
    assert (answer.status, answer.json()["error"]["code"]) == (413, "body_too_large")
    assert answer.bytes_read == 0
    chunk = 256 * 1024
    streamed = await call(gateway, "POST", path, headers=GOOD, chunks=[b" " * chunk] * (limit // chunk + 8))
    assert streamed.status == 413
    assert limit < streamed.bytes_read <= limit + chunk


def test_the_gateway_cap_fits_a_full_batch_of_large_events() -> None:
    assert MAX_BATCH_BYTES == 16 * 1024 * 1024
    event = json.dumps(example_event("birth.registered")).encode()
    assert 1000 * (len(event) + 1) * 8 < MAX_BATCH_BYTES  # a full batch of events eight times the example's size


async def test_gateway_liveness_and_readiness_without_its_dependencies(gateway: FastAPI) -> None:
    live = await call(gateway, "GET", "/healthz")
    assert (live.status, live.json()) == (200, {"status": "ok"})
    ready = await call(gateway, "GET", "/readyz")
    assert ready.status == 503 and ready.headers["retry-after"] == str(RETRY_AFTER_S)
    body = ready.json()
    assert body["status"] == "unavailable" and sorted(body["unavailable"]) == ["kafka", "postgresql"]
    assert all(v.startswith("unavailable (") for v in body["checks"].values())


# --- the projector and the view relay ----------------------------------------------------------------------------


async def test_projector_and_view_relay_probes_without_their_dependencies() -> None:
    from services.projector.app import create_app as create_projector
    from services.view_relay.app import create_app as create_view_relay

    for app in (create_projector(NOWHERE), create_view_relay(NOWHERE)):  # neither started: nothing connected
        live = await call(app, "GET", "/healthz")
        assert (live.status, live.json()) == (200, {"status": "ok"})
        ready = await call(app, "GET", "/readyz")
        assert ready.status == 503 and ready.headers["content-type"] == "application/json"
        assert ready.headers["retry-after"] == str(RETRY_AFTER_S)
        body = ready.json()
        assert body["status"] == "unavailable" and sorted(body["unavailable"]) == ["kafka", "postgresql"], body
