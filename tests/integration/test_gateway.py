"""The gateway against a real Kafka and PostgreSQL: every status code, idempotency, the department fence.

The application runs in-process (its lifespan included) behind httpx's ASGI transport; Kafka and PostgreSQL are
the real ones of the test infrastructure, with topics and a database of each test's own.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from events import DEPARTMENTS, parse_event
from events.bounds import MAX_RECORD_BYTES, RANGE_RULE
from events.examples import example_event
from services.db.dsn import asyncpg_dsn
from services.dead_letters import OMITTED, REASON, REJECTED_BY, VALUE_SIZE
from services.gateway.auth import issue_token
from services.settings import Settings
from tests.support.gateway import serving
from tests.support.infra import Endpoints
from tests.support.projector import read_topic, settings_for

pytestmark = pytest.mark.integration


@dataclass
class Gateway:
    client: httpx.AsyncClient
    settings: Settings
    tokens: dict[str, str]
    database_url: str

    def auth(self, department: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[department]}"}

    def topic(self, name: str) -> str:
        return f"{self.settings.topic_namespace}population.{name}.v1"


@pytest.fixture
async def gateway(infra: Endpoints, namespace: str, database_url: str) -> AsyncIterator[Gateway]:
    settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tokens: dict[str, str] = {d: await issue_token(conn, d, "test") for d in DEPARTMENTS}
    finally:
        await conn.close()
    async with serving(settings) as client:
        yield Gateway(client, settings, tokens, database_url)


def _event(event_type: str = "birth.registered", **changes: Any) -> dict[str, Any]:
    """A valid example event with a fresh event_id."""
    event = example_event(event_type)
    event["event_id"] = str(uuid.uuid4())
    event.update(changes)
    return event


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return dict(body["error"])


# --- single events ----------------------------------------------------------------------------------------------


async def test_an_event_is_on_kafka_when_the_gateway_answers_202(gateway: Gateway, infra: Endpoints) -> None:
    event = _event()
    response = await gateway.client.post("/v1/events", json=event, headers=gateway.auth("public_security"))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["event_id"] == event["event_id"]
    assert body["topic"] == gateway.topic("public_security")
    records = await read_topic(infra.kafka_bootstrap, body["topic"])
    [record] = [r for r in records if r.partition == body["partition"] and r.offset == body["offset"]]
    # Keyed by citizen ID; the value is the canonical form, not the bytes the department happened to send.
    assert record.key == event["citizen_id"].encode()
    assert record.value == parse_event(event).canonical_bytes()
    conn = await asyncpg.connect(asyncpg_dsn(gateway.database_url))
    try:
        row = await conn.fetchrow("SELECT * FROM gateway_events WHERE event_id = $1", uuid.UUID(event["event_id"]))
    finally:
        await conn.close()
    assert row is not None
    assert (row["kafka_partition"], row["kafka_offset"]) == (body["partition"], body["offset"])
    assert bytes(row["content_hash"]) == hashlib.sha256(record.value).digest()
    assert row["department"] == "public_security"


async def test_the_same_event_again_is_200_with_the_original_coordinates(gateway: Gateway, infra: Endpoints) -> None:
    event = _event("student.enrolled")
    first = await gateway.client.post("/v1/events", json=event, headers=gateway.auth("education"))
    assert first.status_code == 202, first.text
    # Same content, other spelling (key order, lower-case x, whitespace): the canonical form decides.
    respelled = json.dumps(dict(reversed(list(event.items()))), indent=2, ensure_ascii=True)
    second = await gateway.client.post(
        "/v1/events",
        content=respelled,
        headers={**gateway.auth("education"), "Content-Type": "application/json"},
    )
    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    records = await read_topic(infra.kafka_bootstrap, gateway.topic("education"))
    assert sum(r.value == parse_event(event).canonical_bytes() for r in records) == 1


async def test_other_content_under_an_accepted_event_id_is_409_and_dead_lettered(
    gateway: Gateway, infra: Endpoints
) -> None:
    event = _event()
    assert (
        await gateway.client.post("/v1/events", json=event, headers=gateway.auth("public_security"))
    ).status_code == 202
    other = copy.deepcopy(event)
    other["payload"]["name"] = "李沐辰"
    response = await gateway.client.post("/v1/events", json=other, headers=gateway.auth("public_security"))
    error = _error(response, 409, "event_id_conflict")
    assert event["event_id"] in error["message"]
    letters = await read_topic(infra.kafka_bootstrap, f"{gateway.settings.topic_namespace}population.dead_letter.v1")
    [letter] = letters
    headers = dict(letter.headers)
    assert headers[REJECTED_BY] == b"gateway"
    assert b"event_id_conflict" in headers[REASON]
    assert json.loads(letter.value) == other
    assert letter.key == other["citizen_id"].encode()


async def test_an_event_type_of_another_department_is_403_naming_its_owner(gateway: Gateway, infra: Endpoints) -> None:
    # Even with the source claiming to be education, an education token cannot publish a birth registration.
    event = _event("birth.registered")
    event["source"]["department"] = "education"
    response = await gateway.client.post("/v1/events", json=event, headers=gateway.auth("education"))
    error = _error(response, 403, "forbidden_event_type")
    assert "public_security" in error["message"] and "birth.registered" in error["message"]
    assert error["details"][0]["field"] == "event_type"
    # Nothing reached the department topics; the refusal is on the dead-letter topic.
    assert await read_topic(infra.kafka_bootstrap, gateway.topic("public_security")) == []
    assert await read_topic(infra.kafka_bootstrap, gateway.topic("education")) == []
    letters = await read_topic(infra.kafka_bootstrap, f"{gateway.settings.topic_namespace}population.dead_letter.v1")
    assert len(letters) == 1 and b"forbidden_event_type" in dict(letters[0].headers)[REASON]


async def test_an_invalid_event_is_422_naming_every_failed_rule(gateway: Gateway, infra: Endpoints) -> None:
    event = _event("birth.registered")
    event["citizen_id"] = "510107202405010159"  # wrong check character
    event["payload"]["sex"] = "unknown"
    event["payload"]["favourite_colour"] = "red"
    del event["recorded_at"]
    response = await gateway.client.post("/v1/events", json=event, headers=gateway.auth("public_security"))
    error = _error(response, 422, "invalid_event")
    fields = {d["field"] for d in error["details"]}
    assert {"citizen_id", "payload.sex", "payload.favourite_colour", "recorded_at"} <= fields, error
    assert any("check character" in d["message"] for d in error["details"] if d["field"] == "citizen_id")
    letters = await read_topic(infra.kafka_bootstrap, f"{gateway.settings.topic_namespace}population.dead_letter.v1")
    assert len(letters) == 1
    assert json.loads(letters[0].value) == event  # the single endpoint dead-letters the body untouched
    assert b"payload.sex" in dict(letters[0].headers)[REASON]


def _out_of_range(value: str) -> str:
    return f"{RANGE_RULE}, got {value!r}"


@pytest.mark.parametrize(
    ("event_type", "path", "value", "field", "message"),
    [
        # Each of these was once accepted here and then stalled the projector (CONTRACT §10): now one rule says no.
        ("hukou.moved_out", "occurred_at", "9999-12-31T23:59:59-14:00", "occurred_at", None),
        ("hukou.moved_out", "occurred_at", "0001-01-01T00:00:00+14:00", "occurred_at", None),
        ("hukou.moved_out", "occurred_at", "9999-12-31T23:59:59+00:00", "occurred_at", None),
        ("hukou.moved_out", "recorded_at", "0001-01-01T00:00:00Z", "recorded_at", None),
        ("insurance.contributed", "payload.period", "0000-01", "payload.period", "between 1870-01 and 2199-12"),
        ("residence_permit.renewed", "payload.valid_until", "9999-12-31", "payload.valid_until", None),
        ("birth.registered", "recorded_at", "2024-04-30T20:00:00+08:00", "citizen_id", "after the day the event was"),
    ],
)
async def test_a_value_the_projector_could_not_store_is_422_naming_the_rule(
    gateway: Gateway, event_type: str, path: str, value: str, field: str, message: str | None
) -> None:
    event = _event(event_type)
    target = event
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[part]
    target[leaf] = value
    department = event["source"]["department"]
    error = _error(
        await gateway.client.post("/v1/events", json=event, headers=gateway.auth(department)), 422, "invalid_event"
    )
    found = {d["field"]: d["message"] for d in error["details"]}
    assert field in found, error
    assert (message or "") in found[field]
    if message is None:
        assert found[field] == _out_of_range(value)


async def test_a_record_larger_than_an_event_may_be_is_422(gateway: Gateway) -> None:
    event = json.dumps(_event("hukou.cancelled"))
    body = (event[:-1] + " " * (MAX_RECORD_BYTES + 1 - len(event)) + "}").encode()
    response = await gateway.client.post(
        "/v1/events", content=body, headers={**gateway.auth("public_security"), "Content-Type": "application/json"}
    )
    error = _error(response, 422, "invalid_event")
    assert "record size: 65,537 bytes" in error["message"]


async def test_a_rejected_event_too_large_to_copy_is_dead_lettered_by_reference(
    gateway: Gateway, infra: Endpoints
) -> None:
    huge = _event("hukou.cancelled")
    huge["padding"] = "x" * (2 * 1024 * 1024)  # fits a batch body (32 MiB), not a Kafka record (1 MiB)
    response = await gateway.client.post(
        "/v1/events:batch", json={"events": [huge, _event("hukou.cancelled")]}, headers=gateway.auth("public_security")
    )
    assert [r["status"] for r in response.json()["results"]] == [422, 202], response.text
    letters = await read_topic(infra.kafka_bootstrap, f"{gateway.settings.topic_namespace}population.dead_letter.v1")
    [letter] = letters
    headers = dict(letter.headers)
    assert letter.value is None and letter.key == huge["citizen_id"].encode()
    assert headers[OMITTED] == b"value"
    assert int(headers[VALUE_SIZE]) > 2 * 1024 * 1024
    assert b"record size" in headers[REASON]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"[1, 2]", 422, "invalid_event"),
        (b'"an event"', 422, "invalid_event"),
        (b'{"event_type": "no.such_type"}', 422, "invalid_event"),
        (b'{"event_type": "vaccination.recorded", "schema_version": 99}', 422, "invalid_event"),
        (b'{"citizen_id": ' + b"9" * 30 + b"}", 422, "invalid_event"),  # beyond 64 bits: JSON all the same
        (b'{"citizen_id": ' + b"9" * 5000 + b"}", 400, "malformed_json"),  # beyond what parse_event reads
    ],
)
async def test_bad_bodies_get_a_clear_4xx(gateway: Gateway, body: bytes, status: int, code: str) -> None:
    response = await gateway.client.post(
        "/v1/events", content=body, headers={**gateway.auth("health"), "Content-Type": "application/json"}
    )
    _error(response, status, code)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        ("Basic dXNlcjpwYXNz", "unauthenticated"),
        ("Bearer", "unauthenticated"),
        ("Bearer rk_d_not-a-real-token", "invalid_token"),
    ],
)
async def test_missing_or_unknown_tokens_are_401(gateway: Gateway, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header else {}
    for path, body in (("/v1/events", _event()), ("/v1/events:batch", {"events": [_event()]})):
        response = await gateway.client.post(path, json=body, headers=headers)
        _error(response, 401, code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_revoked_token_is_401(gateway: Gateway) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(gateway.database_url))
    try:
        await conn.execute("UPDATE department_tokens SET revoked_at = now() WHERE department = 'health'")
    finally:
        await conn.close()
    response = await gateway.client.post(
        "/v1/events", json=_event("vaccination.recorded"), headers=gateway.auth("health")
    )
    assert "revoked" in _error(response, 401, "invalid_token")["message"]


async def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/events",
        content=b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={**gateway.auth("health"), "Content-Type": "application/json"},
    )
    _error(response, 413, "body_too_large")


# --- batches ----------------------------------------------------------------------------------------------------


async def test_a_batch_answers_per_event_and_one_bad_event_does_not_sink_the_others(
    gateway: Gateway, infra: Endpoints
) -> None:
    accepted_before = _event("hukou.registered")
    assert (
        await gateway.client.post("/v1/events", json=accepted_before, headers=gateway.auth("public_security"))
    ).status_code == 202
    good = [_event("residence.registered"), _event("identity.corrected")]
    invalid = _event("residence.ended", payload={"ended_on": "2024-02-30"})
    foreign = _event("employment.registered")
    conflicting = copy.deepcopy(accepted_before)
    conflicting["payload"]["address"] = "somewhere else"
    in_batch_repeat = copy.deepcopy(good[0])
    in_batch_conflict = copy.deepcopy(good[1])
    in_batch_conflict["payload"]["name"] = "王五"
    events = [good[0], invalid, foreign, accepted_before, conflicting, good[1], in_batch_repeat, in_batch_conflict, 7]
    response = await gateway.client.post(
        "/v1/events:batch", json={"events": events}, headers=gateway.auth("public_security")
    )
    assert response.status_code == 207, response.text
    body = response.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [202, 422, 403, 200, 409, 202, 200, 409, 422]
    assert [r["index"] for r in body["results"]] == list(range(len(events)))
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 2, 5)
    results = body["results"]
    assert results[1]["error"]["details"][0]["field"] == "payload.ended_on"
    assert "social_security" in results[2]["error"]["message"]
    assert results[6]["offset"] == results[0]["offset"] and results[6]["partition"] == results[0]["partition"]
    published = await read_topic(infra.kafka_bootstrap, gateway.topic("public_security"))
    coordinates = {(r.partition, r.offset): r.value for r in published}
    assert len(published) == 3  # the earlier single event and the two good ones, each once
    for index, event in ((0, good[0]), (5, good[1])):
        r = results[index]
        assert coordinates[(r["partition"], r["offset"])] == parse_event(event).canonical_bytes()
    letters = await read_topic(infra.kafka_bootstrap, f"{gateway.settings.topic_namespace}population.dead_letter.v1")
    assert len(letters) == 5


async def test_a_whole_batch_again_is_200_with_the_same_coordinates(gateway: Gateway) -> None:
    events = [_event("vaccination.recorded"), _event("health_record.opened"), _event("death.certified")]
    first = await gateway.client.post("/v1/events:batch", json={"events": events}, headers=gateway.auth("health"))
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == [202, 202, 202]
    second = await gateway.client.post("/v1/events:batch", json={"events": events}, headers=gateway.auth("health"))
    assert second.status_code == 200
    assert [r["status"] for r in second.json()["results"]] == [200, 200, 200]
    strip = [{k: v for k, v in r.items() if k != "status"} for r in first.json()["results"]]
    assert strip == [{k: v for k, v in r.items() if k != "status"} for r in second.json()["results"]]


async def test_a_citizens_events_in_one_batch_keep_their_order(gateway: Gateway, infra: Endpoints) -> None:
    base = _event("insurance.contributed")
    events = []
    for month in range(1, 13):
        e = copy.deepcopy(base)
        e["event_id"] = str(uuid.uuid4())
        e["payload"]["period"] = f"2024-{month:02d}"
        events.append(e)
    response = await gateway.client.post(
        "/v1/events:batch", json={"events": events}, headers=gateway.auth("social_security")
    )
    assert response.status_code == 200, response.text
    offsets = [r["offset"] for r in response.json()["results"]]
    assert offsets == sorted(offsets) and len({r["partition"] for r in response.json()["results"]}) == 1
    records = await read_topic(infra.kafka_bootstrap, gateway.topic("social_security"))
    assert [json.loads(r.value)["event_id"] for r in records] == [e["event_id"] for e in events]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "malformed_json"),
        (b"[]", 422, "invalid_batch"),
        (b'{"items": []}', 422, "invalid_batch"),
        (b'{"events": {}}', 422, "invalid_batch"),
        (b'{"events": [], "extra": 1}', 422, "invalid_batch"),
    ],
)
async def test_bad_batches_get_a_clear_4xx(gateway: Gateway, body: bytes, status: int, code: str) -> None:
    response = await gateway.client.post(
        "/v1/events:batch", content=body, headers={**gateway.auth("health"), "Content-Type": "application/json"}
    )
    _error(response, status, code)


async def test_a_batch_over_1000_events_is_413(gateway: Gateway, infra: Endpoints) -> None:
    event = _event("vaccination.recorded")
    response = await gateway.client.post(
        "/v1/events:batch", json={"events": [event] * 1001}, headers=gateway.auth("health")
    )
    assert "1000" in _error(response, 413, "batch_too_large")["message"]
    assert await read_topic(infra.kafka_bootstrap, gateway.topic("health")) == []
    exactly = await gateway.client.post(
        "/v1/events:batch", json={"events": [event] * 1000}, headers=gateway.auth("health")
    )
    assert exactly.status_code == 200
    assert [r["status"] for r in exactly.json()["results"]] == [202] + [200] * 999


async def test_an_empty_batch_is_fine(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/events:batch", json={"events": []}, headers=gateway.auth("health"))
    assert response.status_code == 200 and response.json()["results"] == []


# --- concurrency and unavailability -----------------------------------------------------------------------------


async def test_identical_requests_racing_each_other_publish_once(gateway: Gateway, infra: Endpoints) -> None:
    event = _event("employment.registered")
    responses = await asyncio.gather(
        *(gateway.client.post("/v1/events", json=event, headers=gateway.auth("social_security")) for _ in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [202], [r.text for r in responses]
    assert len({r.text for r in responses}) == 1
    records = await read_topic(infra.kafka_bootstrap, gateway.topic("social_security"))
    assert len(records) == 1


async def test_kafka_unavailable_is_503_not_500(infra: Endpoints, database_url: str) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=SecretStr(database_url), topic_namespace="nowhere.")
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        token = await issue_token(conn, "education")
    finally:
        await conn.close()
    async with serving(settings) as client:
        headers = {"Authorization": f"Bearer {token}"}
        event = _event("student.enrolled")
        response = await client.post("/v1/events", json=event, headers=headers)
        error = _error(response, 503, "kafka_unavailable")
        assert "retry" in error["message"] and response.headers["Retry-After"].isdigit()
        batch = await client.post(
            "/v1/events:batch", json={"events": [event, _event("student.graduated")]}, headers=headers
        )
        assert batch.status_code == 503 and batch.headers["Retry-After"].isdigit()
        assert [r["status"] for r in batch.json()["results"]] == [503, 503]
        assert (await client.get("/healthz")).json() == {"status": "ok"}  # liveness: the process is up
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["kafka"]
        assert ready.json()["checks"]["postgresql"] == "ok"
        # Nothing was remembered: once Kafka is back, the same event is published, not answered from memory.
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            assert await conn.fetchval("SELECT count(*) FROM gateway_events") == 0
        finally:
            await conn.close()


async def test_postgresql_unavailable_is_503_not_500(infra: Endpoints, namespace: str) -> None:
    settings = settings_for(infra.kafka_bootstrap, "postgresql+asyncpg://renkou:renkou@127.0.0.1:1/renkou", namespace)
    async with serving(settings) as client:
        response = await client.post("/v1/events", json=_event(), headers={"Authorization": "Bearer rk_d_x"})
        _error(response, 503, "database_unavailable")
        assert response.headers["Retry-After"].isdigit()
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["postgresql"]


# --- the HTTP surface -------------------------------------------------------------------------------------------


async def test_openapi_healthz_and_metrics(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/events:batch", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    single = spec["paths"]["/v1/events"]["post"]
    assert {"200", "202", "400", "401", "403", "409", "413", "422", "503"} <= set(single["responses"])
    assert single["requestBody"]["content"]["application/json"]["schema"]["title"] == "Event"
    health = await gateway.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}
    await gateway.client.post("/v1/events", json=_event(), headers=gateway.auth("public_security"))
    metrics = (await gateway.client.get("/metrics")).text
    assert 'renkou_gateway_events_total{department="public_security",outcome="accepted"} 1.0' in metrics
    assert 'renkou_gateway_request_seconds_count{method="POST",route="/v1/events",status="202"} 1.0' in metrics


async def test_unknown_paths_and_methods_answer_in_the_error_shape(gateway: Gateway) -> None:
    _error(await gateway.client.get("/v1/nothing"), 404, "not_found")
    _error(await gateway.client.get("/v1/events"), 405, "method_not_allowed")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_json, as_batch=st.booleans())
async def test_no_input_gets_a_500(gateway: Gateway, value: Any, as_batch: bool) -> None:
    # Mutate a valid event too, so that the fuzzing reaches past "not an object".
    if isinstance(value, dict):
        value = {**_event("student.enrolled"), **value}
    path, body = ("/v1/events:batch", {"events": [value]}) if as_batch else ("/v1/events", value)
    response = await gateway.client.post(path, json=body, headers=gateway.auth("education"))
    assert response.status_code < 500 or response.status_code == 503, response.text
