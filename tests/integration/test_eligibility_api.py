"""Eligibility against a real Kafka and PostgreSQL: events published to the department topics, projected by the
projector into the archive, then decided by the service, over HTTP (the query API with the eligibility router)
and by the CLI — the three give the pure evaluator's answer for the same events.

A family of migrants from Hebei in Chengdu: the mother lives in 武侯区 since 2018, works there and holds a
Chengdu residence permit; the father has no permit; their child (born 2015) is registered at home in Hebei with
both parents named, and health certified the birth with the mother as subject.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from events import Event, Payload, make_citizen_id, parse_event
from projections.eligibility import ParentInput, RelativeInput, decide, load_policy
from projections.resident.reads import load_parent_links
from services.clock import today_in_china
from services.db.dsn import asyncpg_dsn
from services.grants import revoke_grant
from services.query_api.app import create_app
from services.query_api.eligibility import router as eligibility_router
from services.residents.eligibility import eligibility
from services.settings import Settings
from tests.support.infra import Endpoints
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.query_api import event, grant, headers
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

MOTHER = make_citizen_id("130102", date(1990, 3, 8), 42)
FATHER = make_citizen_id("130102", date(1988, 11, 20), 31)
CHILD = make_citizen_id("130102", date(2015, 9, 1), 15)
STRANGER = make_citizen_id("110105", date(1980, 1, 1), 11)
# A couple from Hebei in Nantong: the wife rents a flat in 崇川区 (Nantong (4)); her husband lives there with her.
WIFE = make_citizen_id("130102", date(1991, 4, 2), 44)
HUSBAND = make_citizen_id("130102", date(1990, 8, 15), 35)
FLAT = "崇川区测试路1号"
AS_OF = date(2022, 6, 30)  # Chengdu's plan applied 2018-01-01 through 2022-12-31
PATH = f"/v1/residents/{CHILD}/eligibility"


def _history() -> list[dict[str, Any]]:
    settled = ("from_region_code", "legacy_nature")
    return [
        event("hukou.registered", MOTHER, date(2008, 9, 1), region_code="130102", household_id="H-M", drop=settled),
        event("residence.registered", MOTHER, date(2018, 1, 1), since=date(2018, 1, 1), region_code="510107"),
        event(
            "residence_permit.issued",
            MOTHER,
            date(2021, 7, 1),
            permit_no="510107-M-1",
            region_code="510107",
            issued_on=date(2021, 7, 1),
            valid_until=date(2023, 6, 30),
        ),
        event("employment.registered", MOTHER, date(2018, 1, 1), region_code="510107", started_on=date(2018, 1, 1)),
        event("insurance.enrolled", MOTHER, date(2018, 1, 1), region_code="510107", started_on=date(2018, 1, 1)),
        event("insurance.contributed", MOTHER, date(2018, 12, 31), period="2018-01", months=12),
        event("insurance.contributed", MOTHER, date(2019, 12, 31), period="2019-01", months=12),
        event(
            "birth.certified",
            MOTHER,
            date(2015, 9, 3),
            certificate_no="Q130012345",
            birth_date=date(2015, 9, 1),
            father_citizen_id=FATHER,
        ),
        event("hukou.registered", FATHER, date(2008, 9, 1), region_code="130102", household_id="H-M", drop=settled),
        event(
            "birth.registered",
            CHILD,
            date(2015, 9, 20),
            birth_date=date(2015, 9, 1),
            region_code="130102",
            household_id="H-M",
            mother_citizen_id=MOTHER,
            father_citizen_id=FATHER,
            birth_certificate_no="Q130012345",
        ),
        event("hukou.registered", WIFE, date(2012, 5, 1), region_code="130102", household_id="H-N", drop=settled),
        event(
            "hukou.registered",
            HUSBAND,
            date(2012, 5, 1),
            region_code="130102",
            household_id="H-N",
            relationship="spouse",
            drop=settled,
        ),
        event(
            "residence.registered",
            WIFE,
            date(2021, 3, 1),
            since=date(2021, 3, 1),
            region_code="320613",
            address=FLAT,
            basis="residence",
            tenure="rented",
        ),
        event(
            "residence.registered",
            HUSBAND,
            date(2021, 3, 1),
            since=date(2021, 3, 1),
            region_code="320613",
            address=FLAT,
            basis="residence",
            tenure="other",
        ),
    ]


@dataclass(frozen=True)
class Stack:
    database_url: str
    events: list[Event[Payload]]
    tokens: dict[str, str]


@pytest.fixture(scope="module")
async def stack(infra: Endpoints) -> AsyncIterator[Stack]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    history = _history()
    records = [
        (f"{ns}population.{e['source']['department']}.v1", e["citizen_id"].encode(), orjson.dumps(e)) for e in history
    ]
    await publish(infra.kafka_bootstrap, records)
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    tokens = {
        "school": await grant(db, "school-bureau", ["eligibility", "identity"], ["school_enrolment"]),
        "view_only": await grant(db, "hukou-office", ["identity", "hukou"], ["school_enrolment"]),
        "revoked": await grant(db, "old-bureau", ["eligibility"], ["school_enrolment"]),
    }
    try:
        yield Stack(db, [parse_event(e) for e in history], tokens)
    finally:
        await databases.drop_all()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The query API in this process, with the eligibility router included as the lead will include it."""
    app = create_app(Settings(database_url=SecretStr(stack.database_url)))
    if not any(getattr(r, "path", None) == "/v1/residents/{citizen_id}/eligibility" for r in app.routes):
        app.include_router(eligibility_router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://query-api") as c:
            yield c


def _of(events: list[Event[Payload]], citizen: str) -> list[Event[Payload]]:
    return [e for e in events if e.citizen_id == citizen]


def _expected(stack: Stack, policy: str, as_of: date = AS_OF) -> dict[str, Any]:
    """The pure evaluator's answer over the very events that were published."""
    child_birth = next(e for e in stack.events if e.citizen_id == CHILD and e.event_type == "birth.registered")
    certified = next(e for e in stack.events if e.event_type == "birth.certified")
    # Public security's registration names both parents; health's certificate names them too.
    links = (str(child_birth.event_id), str(certified.event_id))
    parents = [
        ParentInput("mother", MOTHER, links, _of(stack.events, MOTHER)),
        ParentInput("father", FATHER, links, _of(stack.events, FATHER)),
    ]
    return decide(load_policy(policy), CHILD, _of(stack.events, CHILD), as_of, parents)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def test_the_archive_gives_the_pure_answer_for_the_published_events(stack: Stack) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        links = await load_parent_links(conn, CHILD)
        answer = await eligibility(conn, CHILD, load_policy("chengdu-2017"), AS_OF)
        nothing = await eligibility(conn, CHILD, load_policy("chengdu-2017"), date(2015, 9, 19))
        stranger = await eligibility(conn, STRANGER, load_policy("chengdu-2017"), AS_OF)
    finally:
        await conn.close()
    assert [(link.role, link.citizen_id) for link in links] == [("mother", MOTHER), ("father", FATHER)]
    assert answer is not None and nothing is None and stranger is None
    assert answer.body == _expected(stack, "chengdu-2017")
    assert answer.consulted == (CHILD, MOTHER, FATHER)
    education = {d["benefit"]: d for d in answer.body["decisions"]}["compulsory_education"]
    assert education["eligible"] and education["conclusive"]
    mother = next(p for p in education["facts"]["parents"] if p["role"] == "mother")
    assert mother["permit"]["valid_in_city"] and len(mother["link_event_ids"]) == 2


async def test_family_follows_the_relative_the_household_links(stack: Stack, client: httpx.AsyncClient) -> None:
    """Nantong (4)「本人及其共同居住生活的配偶……」: the husband has no home of his own in the city but lives with his
    wife, who rents it; the archive links them through their household at home, and the answer shows (and the
    access log records) the wife whose facts decided it."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        answer = await eligibility(conn, HUSBAND, load_policy("nantong-2020"), AS_OF)
    finally:
        await conn.close()
    wife = RelativeInput("spouse", WIFE, "household", (), _of(stack.events, WIFE))
    expected = decide(load_policy("nantong-2020"), HUSBAND, _of(stack.events, HUSBAND), AS_OF, (), (), [wife])
    assert answer is not None and answer.body == expected
    assert answer.consulted == (HUSBAND, WIFE)
    settlement = {d["benefit"]: d for d in answer.body["decisions"]}["settlement"]
    assert settlement["eligible"] and settlement["conclusive"]
    routes = {r["route"]: r["met"] for r in settlement["routes"]}
    assert routes["family_follows"] and not any(met for route, met in routes.items() if route != "family_follows")
    [relative] = settlement["facts"]["relatives"]
    assert relative["citizen_id"] == WIFE and relative["relation"] == "spouse" and relative["basis"] == "household"
    assert FLAT not in orjson.dumps(answer.body).decode()  # the address is compared, never shown

    response = await client.get(
        f"/v1/residents/{HUSBAND}/eligibility",
        params={"policy": "nantong-2020", "as_of": AS_OF.isoformat()},
        headers=headers(stack.tokens["school"], "school_enrolment"),
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        logged = await conn.fetch(
            "SELECT citizen_id FROM access_log WHERE request_id = $1::uuid", response.headers["x-request-id"]
        )
    finally:
        await conn.close()
    assert sorted(r["citizen_id"] for r in logged) == sorted([HUSBAND, WIFE])


async def test_http_answers_with_the_decisions_and_logs_every_citizen_it_shows(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        PATH,
        params={"policy": "chengdu-2017", "as_of": "2022-06-30"},
        headers=headers(stack.tokens["school"], "school_enrolment"),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json" and response.headers["x-request-id"]
    assert response.json() == _expected(stack, "chengdu-2017")
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        rows = await conn.fetch(
            "SELECT citizen_id, consumer, purpose, sections, endpoint, request_id FROM access_log "
            "WHERE request_id = $1::uuid ORDER BY citizen_id",
            response.headers["x-request-id"],
        )
    finally:
        await conn.close()
    assert sorted(r["citizen_id"] for r in rows) == sorted([CHILD, MOTHER, FATHER])
    assert {(r["consumer"], r["purpose"], tuple(r["sections"]), r["endpoint"]) for r in rows} == {
        ("school-bureau", "school_enrolment", ("eligibility",), "eligibility")
    }


@pytest.mark.parametrize("policy", ["xining-2015", "nantong-2020", "chengdu-2017", "feicheng-2016", "liaoyuan-2015"])
async def test_every_policy_answers(stack: Stack, client: httpx.AsyncClient, policy: str) -> None:
    response = await client.get(
        f"/v1/residents/{MOTHER}/eligibility",
        params={"policy": policy, "as_of": "2022-06-30"},
        headers=headers(stack.tokens["school"], "school_enrolment"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy"] == policy and body["as_of"] == "2022-06-30" and body["citizen_id"] == MOTHER
    benefits = [d["benefit"] for d in body["decisions"]]
    assert benefits[:2] == ["residence_permit", "compulsory_education"]
    for decision in body["decisions"]:
        assert decision["rule"]["ref"].startswith(policy) and decision["rule"]["quote"]
        assert decision["reasons"] and all(r["text"] for r in decision["reasons"])
    chengdu_permit = body["decisions"][0]
    assert chengdu_permit["eligible"] is (policy == "chengdu-2017")
    # Xining's plan applied until 2020-07-05 (有效期至2020年7月5日): every decision says it no longer did.
    assert body["in_force"]["on_as_of"] is (policy != "xining-2015")
    assert all(d["reasons"][0]["condition"] == "in_force" for d in body["decisions"])


async def test_as_of_defaults_to_today_in_china(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.get(
        PATH, params={"policy": "nantong-2020"}, headers=headers(stack.tokens["school"], "school_enrolment")
    )
    assert response.status_code == 200, response.text
    assert response.json()["as_of"] in {today_in_china().isoformat(), date.today().isoformat()}


async def test_refusals(stack: Stack, client: httpx.AsyncClient) -> None:
    school = headers(stack.tokens["school"], "school_enrolment")
    good = {"policy": "chengdu-2017", "as_of": "2022-06-30"}
    _error(await client.get(PATH, params=good), 401, "missing_token")
    _error(
        await client.get(PATH, params=good, headers=headers("rk_c_nonsense", "school_enrolment")), 401, "unknown_token"
    )
    _error(await client.get(PATH, params=good, headers=headers(stack.tokens["school"])), 400, "purpose_required")
    _error(
        await client.get(PATH, params=good, headers=headers(stack.tokens["school"], "tax")), 403, "purpose_not_granted"
    )
    error = _error(
        await client.get(PATH, params=good, headers=headers(stack.tokens["view_only"], "school_enrolment")),
        403,
        "section_not_granted",
    )
    assert error["details"]["section"] == "eligibility"
    error = _error(await client.get(PATH, params={"policy": "shanghai-2020"}, headers=school), 422, "unknown_policy")
    assert error["details"]["available"] == [
        "chengdu-2017",
        "feicheng-2016",
        "liaoyuan-2015",
        "nantong-2020",
        "xining-2015",
    ]
    _error(await client.get(PATH, headers=school), 422, "invalid_request")  # no policy
    _error(await client.get(PATH, params={**good, "as_of": "2024-13-01"}, headers=school), 422, "invalid_request")
    _error(await client.get(PATH, params={**good, "as_of": "0001-01-01"}, headers=school), 422, "invalid_as_of")
    _error(
        await client.get(f"/v1/residents/{CHILD[:-1]}0/eligibility", params=good, headers=school),
        422,
        "invalid_citizen_id",
    )
    _error(await client.get(f"/v1/residents/{STRANGER}/eligibility", params=good, headers=school), 404, "not_found")
    _error(await client.get(PATH, params={**good, "as_of": "2015-09-19"}, headers=school), 404, "not_found")


async def test_a_revoked_grant_learns_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    old = headers(stack.tokens["revoked"], "school_enrolment")
    assert (await client.get(PATH, params={"policy": "chengdu-2017"}, headers=old)).status_code == 200
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        await revoke_grant(conn, "old-bureau")
    finally:
        await conn.close()
    # The grant may still be cached by the authenticator: the access-log write re-checks it.
    _error(await client.get(PATH, params={"policy": "chengdu-2017"}, headers=old), 401, "token_revoked")
    _error(
        await client.get(f"/v1/residents/{STRANGER}/eligibility", params={"policy": "chengdu-2017"}, headers=old),
        401,
        "token_revoked",
    )


_CLI = "import typer; from services.cli import policy_cmd; app = typer.Typer(); policy_cmd.register(app); app()"


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    """``renkou`` with the policy commands registered (as services/cli/main.py registers them), as a process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLI,
        *args,
        env={**os.environ, "RENKOU_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_prints_the_same_answer(stack: Stack) -> None:
    code, out, err = await _cli(
        stack.database_url, "eligibility", CHILD, "--policy", "chengdu-2017", "--as-of", "2022-06-30"
    )
    assert code == 0, err
    assert orjson.loads(out) == _expected(stack, "chengdu-2017")
    code, out, err = await _cli(stack.database_url, "eligibility", STRANGER, "--policy", "chengdu-2017")
    assert code == 4 and not out and err.startswith("error: nothing is known about") and err.count("\n") == 1
    code, _, err = await _cli(stack.database_url, "eligibility", CHILD, "--policy", "beijing-2020")
    assert code == 2 and "unknown policy 'beijing-2020'" in err
    code, _, err = await _cli(
        stack.database_url, "eligibility", CHILD, "--policy", "chengdu-2017", "--as-of", "30/06/2024"
    )
    assert code == 2 and "not a date" in err
