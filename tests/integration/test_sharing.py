"""Sharing by purpose (CONTRACT §11) over the real stack: what a consumer's grant gives each purpose, and what
derived data (flags, raw events) may not give away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.examples import CITIZENS, example_events
from projections.resident.render import VIEW_SECTIONS
from services.db.dsn import asyncpg_dsn
from services.identity import local_idp
from tests.support.infra import Endpoints
from tests.support.operations import projected, renkou
from tests.support.projector import settings_for
from tests.support.query_api import event, grant, headers, running_query_api
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

MIGRANT, CHILD = CITIZENS["migrant"], CITIZENS["child"]
MOTHER, FATHER = CITIZENS["mother"], CITIZENS["father"]


@dataclass
class Stack:
    url: str
    database_url: str
    tokens: dict[str, str]


def _history() -> list[dict[str, Any]]:
    events = sorted(example_events().values(), key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    # The migrant works without employee insurance: a flag that names the employer.
    return [*events, event("employment.registered", MIGRANT, date(2024, 3, 1))]


@pytest.fixture(scope="module")
async def stack(infra: Endpoints) -> AsyncIterator[Stack]:
    databases = Databases(infra)
    items = [(e["source"]["department"], e["citizen_id"].encode(), orjson.dumps(e)) for e in _history()]
    _, db = await projected(infra, databases, items)
    tokens = {
        "two_purposes": await grant(
            db,
            "city-services",
            by_purpose={
                "school_enrolment": ["identity", "hukou", "education", "flags"],
                "statistics": ["statistics", "flags"],
            },
        ),
        "flags_only": await grant(db, "watchdog", by_purpose={"integrity": ["flags"]}),
        "family": await grant(db, "school-office", by_purpose={"school_enrolment": ["identity", "family"]}),
        "flags_work": await grant(db, "labour-inspection", by_purpose={"inspection": ["flags", "employment"]}),
        "flags_full": await grant(
            db, "labour-office", by_purpose={"inspection": ["flags", "employment", "social_insurance"]}
        ),
        "events_health": await grant(db, "clinic-audit", by_purpose={"audit": ["events", "health"]}),
        "events_all": await grant(
            db,
            "archive",
            by_purpose={
                "audit": [
                    "events",
                    "identity",
                    "hukou",
                    "residence",
                    "education",
                    "employment",
                    "social_insurance",
                    "health",
                ]
            },
        ),
    }
    try:
        async with running_query_api(db) as api:
            yield Stack(api.url, db, tokens)
    finally:
        await databases.drop_all()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as c:
        yield c


async def _get(client: httpx.AsyncClient, stack: Stack, who: str, purpose: str, path: str) -> httpx.Response:
    return await client.get(path, headers=headers(stack.tokens[who], purpose))


async def test_a_purpose_reads_its_own_sections_only(stack: Stack, client: httpx.AsyncClient) -> None:
    enrolment = await _get(client, stack, "two_purposes", "school_enrolment", f"/v1/residents/{MIGRANT}")
    assert enrolment.status_code == 200, enrolment.text
    assert set(enrolment.json()) == {"citizen_id", "identity", "hukou", "education", "flags"}
    # The same consumer, for statistics: no name, no address — its other purpose's sections are not this one's.
    statistics = await _get(client, stack, "two_purposes", "statistics", f"/v1/residents/{MIGRANT}")
    assert statistics.status_code == 200, statistics.text
    assert set(statistics.json()) == {"citizen_id", "flags"}
    assert statistics.json()["flags"] == []
    named = await _get(client, stack, "two_purposes", "statistics", f"/v1/residents/{MIGRANT}?sections=identity")
    assert named.status_code == 403 and named.json()["error"]["code"] == "section_not_granted"
    assert named.json()["error"]["details"]["purpose"] == "statistics"


async def test_flags_need_every_section_they_speak_of(stack: Stack, client: httpx.AsyncClient) -> None:
    only = await _get(client, stack, "flags_only", "integrity", f"/v1/residents/{MIGRANT}")
    assert only.status_code == 200, only.text
    assert only.json() == {"citizen_id": MIGRANT, "flags": []}
    half = await _get(client, stack, "flags_work", "inspection", f"/v1/residents/{MIGRANT}")
    assert half.json()["flags"] == []
    full = await _get(client, stack, "flags_full", "inspection", f"/v1/residents/{MIGRANT}")
    assert [f["code"] for f in full.json()["flags"]] == ["employed_without_insurance"]
    # Rebuilt for another time (the archive's fold, not the live rows): the same rule.
    for when in ("as_of=2026-06-30", "known_at=2026-06-30T00:00:00%2B08:00"):
        past = await _get(client, stack, "flags_only", "integrity", f"/v1/residents/{MIGRANT}?{when}")
        assert past.status_code == 200, past.text
        assert past.json() == {"citizen_id": MIGRANT, "flags": []}, when
        past_full = await _get(client, stack, "flags_full", "inspection", f"/v1/residents/{MIGRANT}?{when}")
        assert [f["code"] for f in past_full.json()["flags"]] == ["employed_without_insurance"], when


async def test_raw_events_only_of_the_departments_the_purpose_may_read(stack: Stack, client: httpx.AsyncClient) -> None:
    everything = await _get(client, stack, "events_all", "audit", f"/v1/residents/{CHILD}/events")
    assert everything.status_code == 200, everything.text
    departments = {e["department"] for e in everything.json()["events"]}
    assert {"public_security", "health"} <= departments
    health = await _get(client, stack, "events_health", "audit", f"/v1/residents/{CHILD}/events")
    assert health.status_code == 200, health.text
    assert {e["department"] for e in health.json()["events"]} == {"health"}
    refused = await _get(
        client, stack, "events_health", "audit", f"/v1/residents/{CHILD}/events?department=public_security"
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "section_not_granted"


async def _log(stack: Stack, citizen_id: str, request_id: str) -> list[tuple[str, str, list[str]]]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        rows = await conn.fetch(
            "SELECT consumer, endpoint, sections FROM access_log WHERE citizen_id = $1 AND request_id = $2::uuid",
            citizen_id,
            request_id,
        )
    finally:
        await conn.close()
    return [(r["consumer"], r["endpoint"], list(r["sections"])) for r in rows]


async def test_every_relative_a_family_read_discloses_is_logged(stack: Stack, client: httpx.AsyncClient) -> None:
    read = await _get(client, stack, "family", "school_enrolment", f"/v1/residents/{CHILD}")
    assert read.status_code == 200, read.text
    family = read.json()["family"]
    assert {family["mother"], family["father"]} == {MOTHER, FATHER}
    request_id = read.headers["x-request-id"]
    assert await _log(stack, CHILD, request_id) == [("school-office", "resident", ["identity", "family"])]
    for parent in (MOTHER, FATHER):  # three entries for one read: the child's and each parent's own
        assert await _log(stack, parent, request_id) == [("school-office", "family", ["family"])]
    batch = await client.post(
        "/v1/residents:batchGet",
        json={"citizen_ids": [CHILD, MOTHER]},
        headers=headers(stack.tokens["family"], "school_enrolment"),
    )
    assert batch.status_code == 200, batch.text
    batch_id = batch.headers["x-request-id"]
    # The mother is a subject of the batch (one entry as such); the father only through the child's family.
    assert [e[1] for e in await _log(stack, MOTHER, batch_id)] == ["residents:batchGet"]
    assert await _log(stack, FATHER, batch_id) == [("school-office", "family", ["family"])]


async def test_a_citizen_sees_their_own_view_and_who_read_it(
    stack: Stack, client: httpx.AsyncClient, infra: Endpoints
) -> None:
    # A consumer reads the migrant's data first: the citizen must see that read.
    read = await _get(client, stack, "two_purposes", "school_enrolment", f"/v1/residents/{MIGRANT}")
    assert read.status_code == 200
    token = local_idp.issue(infra.state_dir, MIGRANT)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["citizen_id"] == MIGRANT
    assert {"identity", "hukou", "employment", "health", "flags"} <= set(me.json())  # every section: their own
    log = await client.get("/v1/me/access-log", headers={"Authorization": f"Bearer {token}"})
    assert log.status_code == 200, log.text
    entries = log.json()["entries"]
    mine = [e for e in entries if e["request_id"] == read.headers["x-request-id"]]
    assert [(e["consumer"], e["purpose"]) for e in mine] == [("city-services", "school_enrolment")]
    assert log.json()["citizen_id"] == MIGRANT
    # The child's own view names its parents: each parent's log records that read; the child's own does not.
    child = await client.get("/v1/me", headers={"Authorization": f"Bearer {local_idp.issue(infra.state_dir, CHILD)}"})
    assert child.status_code == 200, child.text
    own = child.headers["x-request-id"]
    for parent in (MOTHER, FATHER):
        assert await _log(stack, parent, own) == [(f"citizen:{CHILD}", "family", ["family"])]
    assert await _log(stack, CHILD, own) == []
    # Another citizen's token reaches that citizen's data only: there is no way to name someone else.
    other = local_idp.issue(infra.state_dir, CHILD)
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {other}"})).json()["citizen_id"] == CHILD


async def test_tokens_the_identity_provider_did_not_sign_are_refused(
    client: httpx.AsyncClient, infra: Endpoints, tmp_path: Path
) -> None:
    local_idp.ensure_keys(tmp_path)  # another provider's keys
    forged = local_idp.issue(tmp_path, MIGRANT)
    expired = local_idp.issue(infra.state_dir, MIGRANT, minutes=-10)
    for token, reason in ((forged, "no key"), (expired, "expired"), ("not-a-jwt", "not a JWT")):
        answer = await client.get("/v1/me/access-log", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "invalid_citizen_token" and reason in answer.json()["error"]["message"]
    assert (await client.get("/v1/me")).status_code == 401


async def test_refused_reads_and_statistics_reads_are_recorded(
    stack: Stack, client: httpx.AsyncClient, infra: Endpoints
) -> None:
    unknown = await client.get(f"/v1/residents/{MIGRANT}", headers=headers("rk_c_made-up", "school_enrolment"))
    assert unknown.status_code == 401
    wrong = await _get(client, stack, "flags_only", "marketing", f"/v1/residents/{MIGRANT}")
    assert wrong.status_code == 403
    section = await _get(client, stack, "two_purposes", "statistics", f"/v1/residents/{MIGRANT}?sections=identity")
    assert section.status_code == 403
    stats = await _get(client, stack, "two_purposes", "statistics", "/v1/statistics/population?region_code=5101")
    assert stats.status_code == 200, stats.text

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # refusals are written in batches, every half second
            rows = await conn.fetch(
                "SELECT consumer, purpose, path, status, code FROM refused_reads WHERE path LIKE '/v1/residents/%' "
                "ORDER BY id"
            )
            if len(rows) >= 3 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        aggregates = await conn.fetch("SELECT consumer, purpose, endpoint, detail FROM aggregate_reads")
    finally:
        await conn.close()
    refused = {(r["consumer"], r["purpose"], r["status"], r["code"]) for r in rows}
    assert (None, "school_enrolment", 401, "unknown_token") in refused  # the token named nobody: no consumer
    assert ("watchdog", "marketing", 403, "purpose_not_granted") in refused
    assert ("city-services", "statistics", 403, "section_not_granted") in refused
    assert all(r["path"].startswith("/v1/residents/") for r in rows)
    assert [(a["consumer"], a["purpose"], a["endpoint"]) for a in aggregates] == [
        ("city-services", "statistics", "statistics/population")
    ]
    assert orjson.loads(aggregates[0]["detail"])["region_code"] == "5101"

    # The operator lists them; nobody may change them.
    settings = settings_for(infra.kafka_bootstrap, stack.database_url, "")
    listed = await renkou(settings, "audit", "refused", "--consumer", "watchdog", "--json")
    assert listed.code == 0, listed.stderr
    assert [r["code"] for r in orjson.loads(listed.stdout)] == ["purpose_not_granted"]
    owner = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await owner.execute("DELETE FROM refused_reads")
    finally:
        await owner.close()


async def test_operators_reads_are_in_the_access_log(stack: Stack, infra: Endpoints) -> None:
    settings = settings_for(infra.kafka_bootstrap, stack.database_url, "")
    shown = await renkou(settings, "resident", "show", CHILD, "--purpose", "complaint_review", "--operator", "wang")
    assert shown.code == 0, shown.stderr
    assert orjson.loads(shown.stdout)["citizen_id"] == CHILD
    timeline = await renkou(settings, "audit", "timeline", CHILD, "--operator", "wang")
    assert timeline.code == 0, timeline.stderr
    bad = await renkou(settings, "resident", "show", CHILD, "--purpose", "Just Looking")
    assert bad.code == 2 and "snake case" in bad.stderr

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        rows = await conn.fetch(
            "SELECT citizen_id, consumer, purpose, endpoint, sections FROM access_log "
            "WHERE consumer = 'operator:wang' ORDER BY citizen_id, chain_seq"
        )
    finally:
        await conn.close()
    got = {(r["citizen_id"], r["purpose"], r["endpoint"], tuple(r["sections"])) for r in rows}
    assert (CHILD, "complaint_review", "cli:resident show", tuple(VIEW_SECTIONS)) in got
    assert (CHILD, "audit", "cli:audit timeline", ("events",)) in got
    # The view's family section named the parents: their own entries, as for any consumer's read.
    assert {(MOTHER, "family"), (FATHER, "family")} <= {(r["citizen_id"], r["endpoint"]) for r in rows}
