"""The query API over the real stack: events published to Kafka, projected by the projector, read over HTTP from
``python -m services.query_api`` — grants, purposes, section filtering, the access log, bitemporal reads, errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.citizen_id import make_citizen_id
from events.examples import CITIZENS, example_events
from projections.resident.reads import load_residents
from projections.resident.render import VIEW_SECTIONS
from services.db.dsn import asyncpg_dsn
from services.grants import GRANTABLE_SECTIONS
from services.query_api.single_read import NumberHasAliasesError, load_resident
from services.settings import project_root
from tests.support.infra import Endpoints
from tests.support.operations import projected
from tests.support.query_api import CHINA, event, grant, headers, running_query_api
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

MOTHER, FATHER, CHILD = CITIZENS["mother"], CITIZENS["father"], CITIZENS["child"]
MIGRANT, ELDER = CITIZENS["migrant"], CITIZENS["elder"]
UNKNOWN = make_citizen_id("510107", date(1980, 1, 1), 555)  # valid, but nothing was ever projected about it
CHILD_HOUSEHOLD = "510107-00012345"
GENESIS_HEX = "00" * 32
# A second vaccination of the child: given on 2024-06-01, but only recorded in March 2025.
LATE_RECORDED = datetime(2025, 3, 1, 9, 0, tzinfo=CHINA)


@dataclass
class Stack:
    url: str
    database_url: str
    namespace: str
    tokens: dict[str, str]


def _history() -> list[dict[str, Any]]:
    events = sorted(example_events().values(), key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    late = event(
        "vaccination.recorded", CHILD, date(2024, 6, 1), recorded=LATE_RECORDED, dose=2, administered_on="2024-06-01"
    )
    return [*events, late]


@pytest.fixture(scope="module")
async def stack(infra: Endpoints) -> AsyncIterator[Stack]:
    databases = Databases(infra)
    items = [(e["source"]["department"], e["citizen_id"].encode(), orjson.dumps(e)) for e in _history()]
    settings, db = await projected(infra, databases, items)
    tokens = {
        "full": await grant(db, "auditor", GRANTABLE_SECTIONS, ["audit", "school_enrolment"]),
        "school": await grant(db, "school-bureau", ["identity", "hukou", "education", "family"], ["school_enrolment"]),
        "stats": await grant(db, "planning-office", ["statistics"], ["planning"]),
        "events_only": await grant(db, "archive-office", ["events"], ["audit"]),
    }
    try:
        async with running_query_api(db) as api:
            yield Stack(api.url, db, settings.topic_namespace, tokens)
    finally:
        await databases.drop_all()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as c:
        yield c


def _auth(stack: Stack, who: str, purpose: str) -> dict[str, str]:
    return headers(stack.tokens[who], purpose)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def _log_rows(stack: Stack, citizen_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM access_log WHERE citizen_id = $1 ORDER BY chain_seq", citizen_id
        )
        return rows
    finally:
        await conn.close()


def _check_chain(rows: list[asyncpg.Record]) -> None:
    """Every link: seq 1.., prev = the previous hash (zeros first), hash = sha256(prev || body), canonical body."""
    prev = bytes(32)
    for seq, row in enumerate(rows, start=1):
        assert row["chain_seq"] == seq
        assert bytes(row["prev_hash"]) == prev
        body = bytes(row["body"])
        assert bytes(row["hash"]) == hashlib.sha256(prev + body).digest()
        document = orjson.loads(body)
        assert document == {
            "request_id": str(row["request_id"]),
            "consumer": row["consumer"],
            "purpose": row["purpose"],
            "citizen_id": row["citizen_id"],
            "sections": list(row["sections"]),
            "endpoint": row["endpoint"],
            "accessed_at": row["accessed_at"].astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
        assert body == orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        prev = bytes(row["hash"])


# --- section filtering ------------------------------------------------------------------------------------------


async def test_a_resident_read_returns_only_the_granted_sections(stack: Stack, client: httpx.AsyncClient) -> None:
    school = await client.get(f"/v1/residents/{CHILD}", headers=_auth(stack, "school", "school_enrolment"))
    assert school.status_code == 200, school.text
    view = school.json()
    assert list(view) == ["citizen_id", "identity", "hukou", "education", "family"]
    assert view["citizen_id"] == CHILD
    assert view["identity"]["name"] == "李沐阳"
    assert view["family"]["mother"] == MOTHER
    uuid.UUID(school.headers["x-request-id"])

    full = (await client.get(f"/v1/residents/{CHILD}", headers=_auth(stack, "full", "audit"))).json()
    assert list(full) == ["citizen_id", *VIEW_SECTIONS]
    for section in ("identity", "hukou", "education", "family"):
        assert full[section] == view[section]
    assert full["meta"]["as_of"]  # the date time-relative facts were computed for


async def test_the_sections_parameter_narrows_within_the_grant(stack: Stack, client: httpx.AsyncClient) -> None:
    school = _auth(stack, "school", "school_enrolment")
    narrow = await client.get(f"/v1/residents/{CHILD}", params={"sections": "hukou,identity"}, headers=school)
    assert list(narrow.json()) == ["citizen_id", "identity", "hukou"]
    refused = await client.get(f"/v1/residents/{CHILD}", params={"sections": "identity,health"}, headers=school)
    error = _error(refused, 403, "section_not_granted")
    assert error["details"]["section"] == "health"
    _error(
        await client.get(f"/v1/residents/{CHILD}", params={"sections": "bogus"}, headers=school), 422, "unknown_section"
    )


# --- authentication and authorisation -------------------------------------------------------------------------


async def test_tokens_and_purposes_are_checked(stack: Stack, client: httpx.AsyncClient) -> None:
    path = f"/v1/residents/{CHILD}"
    missing = await client.get(path, headers={"X-Purpose": "audit"})
    _error(missing, 401, "missing_token")
    assert missing.headers["www-authenticate"] == "Bearer"
    _error(
        await client.get(path, headers={"Authorization": "Basic dXNlcjpwdw==", "X-Purpose": "audit"}),
        401,
        "missing_token",
    )
    _error(await client.get(path, headers=headers("rk_c_not-a-token", "audit")), 401, "unknown_token")
    # Authentication comes first: an unknown token learns nothing, not even that its input was malformed.
    _error(await client.get("/v1/residents/123", headers=headers("rk_c_not-a-token", "audit")), 401, "unknown_token")
    _error(await client.get(path, headers=headers(stack.tokens["school"])), 400, "purpose_required")
    wrong = await client.get(path, headers=_auth(stack, "school", "social_assistance"))
    assert _error(wrong, 403, "purpose_not_granted")["details"]["granted"] == ["school_enrolment"]


async def test_each_endpoint_needs_its_section(stack: Stack, client: httpx.AsyncClient) -> None:
    school = _auth(stack, "school", "school_enrolment")
    _error(await client.get(f"/v1/residents/{MIGRANT}/events", headers=school), 403, "section_not_granted")
    _error(await client.get(f"/v1/residents/{MIGRANT}/access-log", headers=school), 403, "section_not_granted")
    _error(await client.get("/v1/statistics/population?region_code=51", headers=school), 403, "section_not_granted")
    stats = _auth(stack, "stats", "planning")
    _error(await client.get(f"/v1/households/{CHILD_HOUSEHOLD}", headers=stats), 403, "section_not_granted")
    _error(await client.get(f"/v1/residents/{CHILD}", headers=stats), 403, "section_not_granted")
    batch = await client.post("/v1/residents:batchGet", json={"citizen_ids": [CHILD]}, headers=stats)
    _error(batch, 403, "section_not_granted")
    # "events" alone reads no department's events: each needs that department's sections too (CONTRACT §11).
    archive = _auth(stack, "events_only", "audit")
    _error(await client.get(f"/v1/residents/{MIGRANT}/events", headers=archive), 403, "section_not_granted")
    assert (
        await client.get(f"/v1/residents/{MIGRANT}/events", headers=_auth(stack, "full", "audit"))
    ).status_code == 200


# --- bad input: 4xx in the contract's shape, never a 500 ----------------------------------------------------------


async def test_malformed_input_is_refused_with_the_rule(stack: Stack, client: httpx.AsyncClient) -> None:
    full = _auth(stack, "full", "audit")
    wrong_check = CHILD[:-1] + ("0" if CHILD[-1] != "0" else "1")
    error = _error(await client.get(f"/v1/residents/{wrong_check}", headers=full), 422, "invalid_citizen_id")
    assert "check character" in error["message"]
    # A 15-digit legacy number is read as its 18-character form (§12); one whose date cannot be is refused.
    legacy = await client.get("/v1/residents/510107900308042", headers=full)
    assert legacy.status_code == 200 and legacy.json()["citizen_id"] == "510107199003080423"
    _error(await client.get("/v1/residents/510107901308042", headers=full), 422, "invalid_citizen_id")
    _error(await client.get(f"/v1/residents/{CHILD}?as_of=2024-13-01", headers=full), 422, "invalid_as_of")
    naive = await client.get(f"/v1/residents/{CHILD}", params={"known_at": "2025-01-01T00:00:00"}, headers=full)
    _error(naive, 422, "invalid_known_at")
    _error(await client.get(f"/v1/residents/{CHILD}?known_at=yesterday", headers=full), 422, "invalid_known_at")
    _error(await client.get("/v1/statistics/population?region_code=5", headers=full), 422, "invalid_region_code")
    _error(await client.get("/v1/statistics/population?region_code=51&as_of=x", headers=full), 422, "invalid_request")
    _error(await client.get("/v1/statistics/population", headers=full), 422, "invalid_request")
    _error(await client.get(f"/v1/residents/{CHILD}/access-log?limit=0", headers=full), 422, "invalid_request")
    _error(await client.get("/v1/households/a%20b", headers=full), 422, "invalid_household_id")
    too_many = {"citizen_ids": [CHILD] * 1001}
    _error(await client.post("/v1/residents:batchGet", json=too_many, headers=full), 422, "invalid_request")
    _error(await client.post("/v1/residents:batchGet", json={"citizen_ids": []}, headers=full), 422, "invalid_request")
    _error(await client.post("/v1/residents:batchGet", content=b"{not json", headers=full), 422, "invalid_request")
    late = await client.post("/v1/residents:batchGet?as_of=2024-02-30", json={"citizen_ids": [CHILD]}, headers=full)
    _error(late, 422, "invalid_as_of")
    bad = await client.post("/v1/residents:batchGet", json={"citizen_ids": [CHILD, "12345"]}, headers=full)
    assert _error(bad, 422, "invalid_citizen_id")["details"][0]["index"] == 1


async def test_unknown_things_are_404_and_wrong_methods_405(stack: Stack, client: httpx.AsyncClient) -> None:
    full = _auth(stack, "full", "audit")
    _error(await client.get(f"/v1/residents/{UNKNOWN}", headers=full), 404, "not_found")
    _error(await client.get(f"/v1/residents/{UNKNOWN}/events", headers=full), 404, "not_found")
    _error(await client.get(f"/v1/residents/{UNKNOWN}/access-log", headers=full), 404, "not_found")
    _error(await client.get("/v1/households/H-NOWHERE", headers=full), 404, "not_found")
    _error(await client.get("/v1/nothing-here", headers=full), 404, "not_found")
    _error(await client.delete(f"/v1/residents/{CHILD}", headers=full), 405, "method_not_allowed")
    assert await _log_rows(stack, UNKNOWN) == []


# --- the access log ------------------------------------------------------------------------------------------------


async def test_every_read_is_in_the_residents_access_log(stack: Stack, client: httpx.AsyncClient) -> None:
    read = await client.get(f"/v1/residents/{MOTHER}", headers=_auth(stack, "school", "school_enrolment"))
    assert read.status_code == 200
    request_id = read.headers["x-request-id"]
    rows = await _log_rows(stack, MOTHER)
    mine = [r for r in rows if str(r["request_id"]) == request_id]
    assert len(mine) == 1
    assert mine[0]["consumer"] == "school-bureau"
    assert mine[0]["purpose"] == "school_enrolment"
    assert list(mine[0]["sections"]) == ["identity", "hukou", "education", "family"]
    assert mine[0]["endpoint"] == "resident"
    _check_chain(rows)

    log = await client.get(f"/v1/residents/{MOTHER}/access-log", headers=_auth(stack, "full", "audit"))
    assert log.status_code == 200
    entries = log.json()["entries"]
    assert entries[0]["request_id"] == request_id  # newest first
    assert entries[0]["consumer"] == "school-bureau"
    assert entries[0]["purpose"] == "school_enrolment"
    assert entries[0]["hash"] == bytes(mine[0]["hash"]).hex()
    # Reading the access log is itself recorded (after the entries it returned).
    after = await _log_rows(stack, MOTHER)
    assert after[-1]["endpoint"] == "access_log" and str(after[-1]["request_id"]) == log.headers["x-request-id"]
    _check_chain(after)


async def test_access_log_pages_newest_first(stack: Stack, client: httpx.AsyncClient) -> None:
    full = _auth(stack, "full", "audit")
    for _ in range(3):
        assert (await client.get(f"/v1/residents/{FATHER}", headers=full)).status_code == 200
    # Other tests' family reads of the child may have logged the father too: count from his chain's end.
    end = len(await _log_rows(stack, FATHER))
    assert end >= 3
    first = (await client.get(f"/v1/residents/{FATHER}/access-log?limit=2", headers=full)).json()
    assert [e["chain_seq"] for e in first["entries"]] == [end, end - 1]
    assert first["next_before_seq"] == end - 1
    rest = (
        await client.get(f"/v1/residents/{FATHER}/access-log?limit={end}&before_seq={end - 1}", headers=full)
    ).json()
    assert [e["chain_seq"] for e in rest["entries"]] == list(range(end - 2, 0, -1))
    assert rest["entries"][-1]["prev_hash"] == GENESIS_HEX
    assert rest["next_before_seq"] is None


async def test_batch_get_answers_in_order_and_logs_each_resident(stack: Stack, client: httpx.AsyncClient) -> None:
    lower = MIGRANT.lower()  # a lower-case x is the same citizen
    response = await client.post(
        "/v1/residents:batchGet",
        json={"citizen_ids": [ELDER, lower, UNKNOWN, ELDER]},
        headers=_auth(stack, "school", "school_enrolment"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [v["citizen_id"] for v in body["residents"]] == [ELDER, MIGRANT]
    assert body["not_found"] == [UNKNOWN]
    assert all(list(v) == ["citizen_id", "identity", "hukou", "education", "family"] for v in body["residents"])
    request_id = response.headers["x-request-id"]
    for cid in (ELDER, MIGRANT):
        rows = [r for r in await _log_rows(stack, cid) if str(r["request_id"]) == request_id]
        assert len(rows) == 1 and rows[0]["endpoint"] == "residents:batchGet"
    assert await _log_rows(stack, UNKNOWN) == []


async def test_concurrent_reads_of_one_resident_extend_one_chain(stack: Stack, client: httpx.AsyncClient) -> None:
    pupil = CITIZENS["pupil"]
    before = len(await _log_rows(stack, pupil))
    full = _auth(stack, "full", "audit")
    responses = await asyncio.gather(*(client.get(f"/v1/residents/{pupil}", headers=full) for _ in range(40)))
    assert {r.status_code for r in responses} == {200}
    rows = await _log_rows(stack, pupil)
    assert len(rows) == before + 40
    assert {str(r["request_id"]) for r in rows[before:]} == {r.headers["x-request-id"] for r in responses}
    _check_chain(rows)


async def test_a_read_whose_access_log_write_fails_is_not_answered(stack: Stack, client: httpx.AsyncClient) -> None:
    full = _auth(stack, "full", "audit")
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        before = len(await _log_rows(stack, ELDER))
        # The write fails: every insert into the access log is refused.
        await conn.execute(
            "CREATE TRIGGER test_refuse_reads BEFORE INSERT ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION renkou_refuse_change()"
        )
        try:
            refused = await client.get(f"/v1/residents/{ELDER}", headers=full)
            error = _error(refused, 503, "access_log_unavailable")
            assert ELDER not in refused.text and "identity" not in refused.text  # nothing of the view leaves
            assert error["details"]["request_id"]
            batch = await client.post("/v1/residents:batchGet", json={"citizen_ids": [ELDER]}, headers=full)
            _error(batch, 503, "access_log_unavailable")
            _error(await client.get(f"/v1/residents/{ELDER}/events", headers=full), 503, "access_log_unavailable")
        finally:
            await conn.execute("DROP TRIGGER test_refuse_reads ON access_log")
        assert len(await _log_rows(stack, ELDER)) == before

        # The write cannot get its lock in time (the table is locked by someone else): refused, too.
        async with conn.transaction():
            await conn.execute("LOCK TABLE access_log IN ACCESS EXCLUSIVE MODE")
            _error(await client.get(f"/v1/residents/{ELDER}", headers=full), 503, "access_log_unavailable")
        assert len(await _log_rows(stack, ELDER)) == before

        assert (await client.get(f"/v1/residents/{ELDER}", headers=full)).status_code == 200
        assert len(await _log_rows(stack, ELDER)) == before + 1
    finally:
        await conn.close()
    metrics = (await client.get("/metrics")).text
    assert "renkou_query_api_access_log_failures_total 4.0" in metrics


# --- expiry and revocation -----------------------------------------------------------------------------------------


async def test_an_expired_grant_is_refused(stack: Stack, client: httpx.AsyncClient) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    token = await grant(stack.database_url, "short-lived", ["identity"], ["audit"], expires)
    assert (await client.get(f"/v1/residents/{CHILD}", headers=headers(token, "audit"))).status_code == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    _error(await client.get(f"/v1/residents/{CHILD}", headers=headers(token, "audit")), 401, "token_expired")


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, "RENKOU_DATABASE_URL": database_url},
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_grants_cli_add_list_revoke_takes_effect_at_once(stack: Stack, client: httpx.AsyncClient) -> None:
    added = await asyncio.to_thread(
        _cli, stack.database_url, "grants", "add", "clinic", "--sections", "identity,health", "--purposes",
        "child_health", "--expires", "2099-12-31",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("rk_c_") and "\n" not in token
    clinic = headers(token, "child_health")
    view = await client.get(f"/v1/residents/{CHILD}", headers=clinic)
    assert list(view.json()) == ["citizen_id", "identity", "health"]

    listed = await asyncio.to_thread(_cli, stack.database_url, "grants", "list", "--json")
    rows = {r["name"]: r for r in orjson.loads(listed.stdout)}
    assert rows["clinic"]["status"] == "active" and rows["clinic"]["expires_at"] == "2100-01-01T00:00:00+08:00"
    assert token not in listed.stdout

    revoked = await asyncio.to_thread(_cli, stack.database_url, "grants", "revoke", "clinic")
    assert revoked.returncode == 0, revoked.stderr
    # The service may still hold the grant in its cache; the access-log write refuses it all the same.
    _error(await client.get(f"/v1/residents/{CHILD}", headers=clinic), 401, "token_revoked")
    _error(await client.get(f"/v1/residents/{UNKNOWN}", headers=clinic), 401, "token_revoked")

    refusals = (
        (("grants", "add", "clinic", "--sections", "identity", "--purposes", "x"), "already exists"),
        (("grants", "add", "c2", "--sections", "identity,bogus", "--purposes", "x"), "unknown section bogus"),
        (("grants", "add", "c4", "--sections", "identity", "--purposes", "x", "--expires", "31/12/2099"), "not a date"),
        (("grants", "revoke", "nobody"), "no grant named"),
    )
    for args, message in refusals:
        result = await asyncio.to_thread(_cli, stack.database_url, *args)
        assert result.returncode != 0, args
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


# --- archived events, households, bitemporal reads -----------------------------------------------------------------


async def test_archived_events_carry_coordinates_and_verifiable_chains(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/residents/{MIGRANT}/events", headers=_auth(stack, "full", "audit"))
    assert response.status_code == 200
    events = response.json()["events"]
    migrant_events = [e for e in _history() if e["citizen_id"] == MIGRANT]
    assert {e["event_id"] for e in events} == {e["event_id"] for e in migrant_events}
    chains: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        chains.setdefault(e["department"], []).append(e)
        assert e["topic"] == f"{stack.namespace}population.{e['department']}.v1"
        assert isinstance(e["partition"], int) and isinstance(e["offset"], int)
        assert e["event"]["event_id"] == e["event_id"]
    for chain in chains.values():
        prev = GENESIS_HEX
        for seq, e in enumerate(chain, start=1):
            assert e["chain_seq"] == seq and e["prev_hash"] == prev
            assert e["hash"] == hashlib.sha256(bytes.fromhex(prev) + e["body"].encode()).hexdigest()
            prev = e["hash"]
    only = await client.get(
        f"/v1/residents/{MIGRANT}/events", params={"department": "health"}, headers=_auth(stack, "full", "audit")
    )
    assert {e["department"] for e in only.json()["events"]} == {"health"}
    rows = await _log_rows(stack, MIGRANT)
    assert any(str(r["request_id"]) == response.headers["x-request-id"] and r["endpoint"] == "events" for r in rows)


async def test_household_members_are_listed_and_each_read_logged(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/households/{CHILD_HOUSEHOLD}", headers=_auth(stack, "school", "school_enrolment"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_id"] == CHILD_HOUSEHOLD and body["region_code"] == "510107"
    assert body["members"] == [{"citizen_id": CHILD, "relationship": "child"}]
    rows = await _log_rows(stack, CHILD)
    assert rows[-1]["endpoint"] == "household" and list(rows[-1]["sections"]) == ["family"]


async def test_as_of_and_known_at_rebuild_the_view_from_the_archive(stack: Stack, client: httpx.AsyncClient) -> None:
    full = _auth(stack, "full", "audit")

    async def view(cid: str, **params: str) -> dict[str, Any]:
        response = await client.get(f"/v1/residents/{cid}", params=params, headers=full)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    before = await view(MIGRANT, as_of="2020-01-01")
    assert before["hukou"]["status"] == "none"
    assert before["residence"]["registration"]["region_code"] == "510107"
    assert before["residence"]["permit"]["status"] == "valid"
    assert before["meta"]["as_of"] == "2020-01-01"
    after = await view(MIGRANT, as_of="2023-01-01")
    assert after["hukou"]["status"] == "registered" and after["residence"]["registration"] is None
    assert after["residence"]["permit"]["status"] == "revoked"

    # The second vaccination happened in June 2024 but was recorded in March 2025.
    assert (await view(CHILD, as_of="2024-12-31"))["health"]["vaccinations"] == 2
    then = await view(CHILD, known_at="2025-01-01T00:00:00+08:00")
    assert then["health"]["vaccinations"] == 1
    assert then["meta"]["known_at"] == "2025-01-01T00:00:00+08:00" and then["meta"]["as_of"] == "2025-01-01"
    both = await view(CHILD, as_of="2024-05-25", known_at=LATE_RECORDED.isoformat())
    assert both["health"]["vaccinations"] == 1 and both["hukou"]["status"] == "registered"
    assert (await view(CHILD))["health"]["vaccinations"] == 2

    # Before anything about the child had happened, or been recorded, nothing was known.
    _error(await client.get(f"/v1/residents/{CHILD}?as_of=2024-04-30", headers=full), 404, "not_found")
    _error(await client.get(f"/v1/residents/{CHILD}?known_at=2020-01-01T00:00:00Z", headers=full), 404, "not_found")
    batch = await client.post(
        "/v1/residents:batchGet?as_of=2020-01-01", json={"citizen_ids": [MIGRANT, CHILD]}, headers=full
    )
    assert [v["citizen_id"] for v in batch.json()["residents"]] == [MIGRANT]
    assert batch.json()["not_found"] == [CHILD]


async def test_the_single_read_loader_agrees_with_the_read_store(stack: Stack) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        ids = [r[0] for r in await conn.fetch("SELECT DISTINCT citizen_id FROM projection.sections")]
        linked = {
            n for r in await conn.fetch("SELECT old_citizen_id, new_citizen_id FROM projection.number_links") for n in r
        }
        everyone = await load_residents(conn, ids)
        for cid in ids:
            if cid in linked:  # one of a person's numbers (§12): read by person, never by this statement
                with pytest.raises(NumberHasAliasesError):
                    await load_resident(conn, cid)
            else:
                assert await load_resident(conn, cid) == everyone[cid]
        assert linked, "the data set has people with several numbers"
        assert await load_resident(conn, UNKNOWN) is None
    finally:
        await conn.close()


# --- operations ----------------------------------------------------------------------------------------------------


async def test_health_metrics_and_openapi(stack: Stack, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "checks": {"postgresql": "ok"}}
    await client.get(f"/v1/residents/{CHILD}", headers=_auth(stack, "full", "audit"))
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    latency = [line for line in metrics.text.splitlines() if line.startswith("renkou_query_api_request_seconds_bucket")]
    assert any('route="/v1/residents/{citizen_id}"' in line and 'status="200"' in line for line in latency)
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/v1/residents/{citizen_id}",
        "/v1/residents:batchGet",
        "/v1/residents/{citizen_id}/events",
        "/v1/residents/{citizen_id}/access-log",
        "/v1/households/{household_id}",
        "/v1/statistics/population",
    } <= set(spec["paths"])
    read = spec["paths"]["/v1/residents/{citizen_id}"]["get"]
    assert {p["name"] for p in read["parameters"]} >= {"citizen_id", "as_of", "known_at", "sections", "X-Purpose"}
    assert read["security"] == [{"HTTPBearer": []}]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


async def test_without_its_database_the_service_answers_503(infra: Endpoints) -> None:
    missing = infra.database_url.rsplit("/", 1)[0] + f"/renkou_absent_{uuid.uuid4().hex[:8]}"
    async with running_query_api(missing) as api, httpx.AsyncClient(base_url=api.url) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["postgresql"]
        for _ in range(2):  # and again: a failed connection leaves no slot behind
            response = await client.get(f"/v1/residents/{CHILD}", headers=headers("rk_c_any", "audit"))
            _error(response, 503, "database_unavailable")
            assert response.headers["Retry-After"].isdigit()


async def test_group_commit_refuses_only_the_revoked_consumers_reads(stack: Stack) -> None:
    """Reads of two consumers committed together: the revoked one's are refused, the other's are appended."""
    from contextlib import asynccontextmanager

    from services.access_log.database import AccessEntry, AccessLogWriter, GrantNoLongerValidError
    from services.grants import revoke_grant

    await grant(stack.database_url, "group-valid", ["identity"], ["audit"])
    await grant(stack.database_url, "group-revoked", ["identity"], ["audit"])
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        await revoke_grant(conn, "group-revoked")
    finally:
        await conn.close()

    @asynccontextmanager
    async def connection() -> AsyncIterator[asyncpg.Connection]:
        c = await asyncpg.connect(asyncpg_dsn(stack.database_url))
        try:
            yield c
        finally:
            await c.close()

    writer = AccessLogWriter(connection, timeout=5.0, max_flushes=1)  # one transaction in flight: all queue up
    elder, migrant = CITIZENS["elder"], CITIZENS["migrant"]
    before = {cid: len(await _log_rows(stack, cid)) for cid in (elder, migrant)}

    def entry(consumer: str) -> AccessEntry:
        return AccessEntry(uuid.uuid4(), consumer, "audit", ("identity",), "resident", datetime.now(UTC))

    valid = [entry("group-valid") for _ in range(6)]
    results = await asyncio.gather(
        *(writer.append(e, [elder, migrant]) for e in valid),
        writer.append(entry("group-revoked"), [elder]),
        writer.append(entry("group-revoked"), [migrant]),
        return_exceptions=True,
    )
    assert results[:6] == [None] * 6
    assert all(isinstance(r, GrantNoLongerValidError) for r in results[6:]), results[6:]
    for cid in (elder, migrant):
        rows = await _log_rows(stack, cid)
        assert len(rows) == before[cid] + 6
        assert {str(r["request_id"]) for r in rows[before[cid] :]} == {str(e.request_id) for e in valid}
        _check_chain(rows)


def _comparable(response: httpx.Response) -> tuple[int, Any]:
    """A response's status and body, without what differs from read to read (request ids)."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return response.status_code, (response.headers.get("location"), response.text)
    body = response.json()
    if isinstance(body.get("error"), dict) and isinstance(body["error"].get("details"), dict):
        body["error"]["details"].pop("request_id", None)
    return response.status_code, body


async def test_the_fast_lane_answers_exactly_like_the_fastapi_route(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /v1/residents/{id}`` through ``ResidentReadLane`` and through FastAPI's route: the same statuses,
    bodies and access-log entries, for every kind of answer; every other request still goes to FastAPI."""
    from pydantic import SecretStr

    from services.query_api import fast_lane
    from services.query_api.app import create_app
    from services.query_api.routes import read_resident as original
    from services.settings import Settings

    handled: list[str] = []

    async def counting(request: Any, citizen_id: str) -> Any:
        handled.append(citizen_id)
        return await original(request, citizen_id)

    monkeypatch.setattr(fast_lane, "read_resident", counting)
    full, school = _auth(stack, "full", "audit"), _auth(stack, "school", "school_enrolment")
    wrong_check = CHILD[:-1] + ("0" if CHILD[-1] != "0" else "1")
    requests: list[tuple[str, dict[str, str]]] = [
        (f"/v1/residents/{CHILD}", full),
        (f"/v1/residents/{MOTHER}", school),
        (f"/v1/residents/{CHILD}?sections=identity,family", school),
        (f"/v1/residents/{CHILD}?sections=health", school),
        (f"/v1/residents/{CHILD}?sections=nonsense", full),
        (f"/v1/residents/{CHILD}?as_of=2024-05-02", full),
        (f"/v1/residents/{CHILD}?known_at=2025-01-01T00:00:00%2B08:00", full),
        (f"/v1/residents/{CHILD}?as_of=2024-13-01", full),
        (f"/v1/residents/{CHILD}?known_at=2025-01-01T00:00:00", full),
        (f"/v1/residents/{wrong_check}", full),
        ("/v1/residents/510107900308042", full),
        (f"/v1/residents/{UNKNOWN}", full),
        (f"/v1/residents/{CHILD}", {}),
        (f"/v1/residents/{CHILD}", headers("rk_c_not-a-token", "audit")),
        (f"/v1/residents/{CHILD}", {"Authorization": full["Authorization"]}),
        (f"/v1/residents/{CHILD}", _auth(stack, "full", "marketing")),
        (f"/v1/residents/{CHILD}", _auth(stack, "stats", "planning")),
        (f"/v1/residents/{CHILD}/", full),
        (f"/v1/residents/{CHILD}/events", full),
    ]
    answers: dict[bool, list[tuple[int, Any]]] = {}
    logged: dict[bool, int] = {}
    for lane in (True, False):
        app = create_app(Settings(database_url=SecretStr(stack.database_url)), fast_lane=lane)
        before = len(await _log_rows(stack, CHILD))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lane") as client,
        ):
            handled.clear()
            answers[lane] = [_comparable(await client.get(path, headers=h)) for path, h in requests]
            # The lane took every single-resident read (the trailing slash is not one), and nothing else.
            assert len(handled) == (len(requests) - 2 if lane else 0)
            metrics = (await client.get("/metrics")).text
            assert 'route="/v1/residents/{citizen_id}"' in metrics
        logged[lane] = len(await _log_rows(stack, CHILD)) - before
    assert answers[True] == answers[False]
    # CHILD's four resident reads that were answered and its events read, each logged once; and the mother's
    # two reads (by her number, and by its 15-digit legacy form, §12), whose family section disclosed CHILD (an
    # entry of CHILD's own, CONTRACT §11).
    assert logged[True] == logged[False] == 7
    statuses = [status for status, _ in answers[True]]
    assert statuses == [200, 200, 200, 403, 422, 200, 200, 422, 422, 422, 200, 404, 401, 401, 400, 403, 403, 307, 200]
