"""One person, several numbers (CONTRACT §12) over the real stack: a number change, a merged duplicate, reads by
every number and by the 15-digit legacy form, events under a superseded number after the change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.citizen_id import make_citizen_id
from events.examples import CITIZENS
from services.access_log.database import AccessEntry, append_without_grant
from services.db.dsn import asyncpg_dsn
from services.identity import local_idp
from tests.support.infra import Endpoints
from tests.support.operations import renkou
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.query_api import event, grant, headers, running_query_api
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

OLD, NEW = CITIZENS["renumbered_before"], CITIZENS["renumbered"]
SURVIVOR, DUPLICATE = CITIZENS["survivor"], CITIZENS["duplicate"]
PUPIL = CITIZENS["pupil"]
LEGACY_OLD = OLD[:6] + OLD[8:17]  # the 15-digit form: no century, no check character
# Registered twice in one Jinjiang household, merged but the duplicate's registration never cancelled.
HEAD = make_citizen_id("510104", date(1961, 6, 1), 5)
TWICE, TWICE_DUPLICATE = (
    make_citizen_id("510104", date(1963, 2, 14), 7),
    make_citizen_id("510104", date(1963, 2, 14), 9),
)
HOUSEHOLD = "510104-00077777"
EMPLOYER_B = "91510104MA61XY7Q2"


@dataclass
class Stack:
    url: str
    database_url: str
    token: str
    log_only: str  # access_log, no identity


def _history() -> list[dict[str, Any]]:
    employer_b = EMPLOYER_B + _check(EMPLOYER_B)
    return [
        # The number change arrives before some of the old number's events, and the old number is still used
        # by social security after it.
        event("identity.number_changed", NEW, date(2023, 4, 12), previous_citizen_id=OLD, changed_on="2023-04-12"),
        event("hukou.registered", OLD, date(2020, 1, 6), name="赵立新", sex="male", birth_date="1985-02-03"),
        event("employment.registered", OLD, date(2021, 3, 1)),
        event("employment.registered", OLD, date(2023, 6, 1), employer_code=employer_b, started_on="2023-06-01"),
        event("residence.registered", NEW, date(2024, 2, 1), since="2024-02-01", region_code="510104", drop=["name"]),
        # Registered twice; the duplicate's job is the person's; merged and cancelled.
        event("hukou.registered", SURVIVOR, date(2015, 5, 5), name="钱秀英", sex="female", birth_date="1972-10-09"),
        event("hukou.registered", DUPLICATE, date(2019, 7, 1), name="钱秀英", sex="female", birth_date="1972-10-09"),
        event("employment.registered", DUPLICATE, date(2020, 2, 1)),
        event("identity.duplicate_merged", SURVIVOR, date(2022, 11, 3), duplicate_citizen_id=DUPLICATE),
        event("hukou.cancelled", DUPLICATE, date(2022, 11, 3), reason="duplicate"),
        *(
            event(
                "hukou.registered",
                number,
                date(2001, 3, 3),
                region_code="510104",
                household_id=HOUSEHOLD,
                relationship=relationship,
                name=name,
                sex=sex,
                birth_date=born,
            )
            for number, relationship, name, sex, born in (
                (HEAD, "head", "孙建国", "male", "1961-06-01"),
                (TWICE, "spouse", "周丽", "female", "1963-02-14"),
                (TWICE_DUPLICATE, "spouse", "周丽", "female", "1963-02-14"),
            )
        ),
        event(
            "identity.duplicate_merged",
            TWICE,
            date(2010, 1, 1),
            duplicate_citizen_id=TWICE_DUPLICATE,
            merged_on="2010-01-01",
        ),
        # Someone with one number, read by the one-statement path.
        event("student.enrolled", PUPIL, date(2023, 9, 1)),
    ]


def _check(first17: str) -> str:
    from stdnum.cn import uscc

    return str(uscc.calc_check_digit(first17 + "0"))


_HISTORY = _history()


@pytest.fixture(scope="module")
async def stack(infra: Endpoints) -> AsyncIterator[Stack]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    records = [
        (f"{ns}population.{e['source']['department']}.v1", e["citizen_id"].encode(), orjson.dumps(e)) for e in _HISTORY
    ]
    await publish(infra.kafka_bootstrap, records)
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    sections = ["identity", "hukou", "residence", "employment", "social_insurance", "education", "meta", "events"]
    token = await grant(db, "registry-check", by_purpose={"audit": [*sections, "access_log", "family", "eligibility"]})
    log_only = await grant(db, "citizen-portal", by_purpose={"audit": ["access_log"]})
    try:
        async with running_query_api(db) as api:
            yield Stack(api.url, db, token, log_only)
    finally:
        await databases.drop_all()


async def _read(stack: Stack, number: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        return await client.get(f"/v1/residents/{number}", headers=headers(stack.token, "audit"))


async def test_a_changed_number_is_one_person_by_every_number(stack: Stack) -> None:
    views = {}
    for number in (OLD, NEW, LEGACY_OLD):
        answer = await _read(stack, number)
        assert answer.status_code == 200, (number, answer.text)
        views[number] = answer.json()
    view = views[NEW]
    assert view["citizen_id"] == NEW and view["aliases"] == [OLD]
    assert views[OLD] | {"meta": None} == view | {"meta": None}
    assert views[LEGACY_OLD]["citizen_id"] == NEW
    # Identity and hukou from the old number, residence from the new one, and both jobs, the later one
    # published under the old number after the change.
    assert view["identity"]["name"] == "赵立新"
    assert view["hukou"]["status"] == "registered"
    assert view["residence"]["registration"]["region_code"] == "510104"
    assert len(view["employment"]["employers"]) == 2
    assert view["meta"]["event_count"] == 5


async def test_a_merged_duplicate_is_the_surviving_registration(stack: Stack) -> None:
    answer = await _read(stack, DUPLICATE)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["citizen_id"] == SURVIVOR and view["aliases"] == [DUPLICATE]
    assert view["hukou"]["status"] == "registered" and view["hukou"]["registered_on"] == "2015-05-05"
    assert view["employment"]["status"] == "employed"  # recorded under the duplicate registration
    assert (await _read(stack, SURVIVOR)).json()["citizen_id"] == SURVIVOR


async def test_reads_by_person_are_logged_under_the_current_number(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        batch = await client.post(
            "/v1/residents:batchGet",
            json={"citizen_ids": [OLD, PUPIL]},
            headers=headers(stack.token, "audit"),
        )
    assert batch.status_code == 200, batch.text
    assert [r["citizen_id"] for r in batch.json()["residents"]] == [NEW, PUPIL]
    single = await _read(stack, PUPIL)
    assert single.status_code == 200 and "aliases" not in single.json()
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        logged = {
            r["citizen_id"]
            for r in await conn.fetch(
                # not the entries made under superseded numbers below
                "SELECT DISTINCT citizen_id FROM access_log WHERE consumer <> 'old-reader'"
            )
        }
    finally:
        await conn.close()
    assert NEW in logged and PUPIL in logged
    assert OLD not in logged and DUPLICATE not in logged  # a person's reads are logged under their current number


async def test_statistics_count_a_person_once(stack: Stack) -> None:
    from services.query_api.statistics import population_statistics

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        # Mid-2021: the duplicate registration is still open (merged in 2022) and the number not yet changed.
        figures = await population_statistics(conn, "510107", date(2021, 6, 30))
        after = await population_statistics(conn, "510107", date(2025, 6, 30))
    finally:
        await conn.close()
    # Two people registered in Wuhou: the one whose number changed, and the one registered twice — once each.
    assert figures.total.registered.population == 2
    assert after.total.registered.population == 2


async def test_a_persons_events_come_from_every_number(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        answer = await client.get(f"/v1/residents/{OLD}/events", headers=headers(stack.token, "audit"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["citizen_id"] == NEW
    assert sorted((e["citizen_id"], e["event_type"]) for e in body["events"]) == sorted(
        [
            (NEW, "identity.number_changed"),
            (NEW, "residence.registered"),
            (OLD, "hukou.registered"),
            (OLD, "employment.registered"),
            (OLD, "employment.registered"),
        ]
    )


async def _entries_under(stack: Stack, number: str, when: list[datetime]) -> list[str]:
    """Entries logged under ``number`` at ``when`` (as reads before the number was superseded were)."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        reads = [AccessEntry(uuid.uuid4(), "old-reader", "audit", ("identity",), "resident", moment) for moment in when]
        for read in reads:
            await append_without_grant(conn, [(read, [number])])
    finally:
        await conn.close()
    return [str(read.request_id) for read in reads]


async def test_the_access_log_is_the_persons_by_every_number(stack: Stack) -> None:
    old_reads = await _entries_under(stack, OLD, [datetime(2023, 1, d, 9, tzinfo=UTC) for d in (2, 3, 4)])
    assert (await _read(stack, NEW)).status_code == 200  # logged under the current number
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        whole = await client.get(f"/v1/residents/{LEGACY_OLD}/access-log", headers=headers(stack.token, "audit"))
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert body["citizen_id"] == NEW and body["aliases"] == [OLD]
        entries = body["entries"]
        assert [e["request_id"] for e in entries if e["citizen_id"] == OLD] == old_reads[::-1]  # newest first
        assert entries[0]["citizen_id"] == NEW  # the read just made, the newest
        assert [e["accessed_at"] for e in entries] == sorted((e["accessed_at"] for e in entries), reverse=True)
        # Paging two at a time walks the same entries, once each, in the same order.
        paged: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": 2} | ({"before": cursor} if cursor else {})
            page = await client.get(
                f"/v1/residents/{OLD}/access-log", params=query, headers=headers(stack.token, "audit")
            )
            assert page.status_code == 200, page.text
            paged += page.json()["entries"]
            cursor = page.json()["next_before"]
            if cursor is None:
                break
            assert OLD not in cursor and NEW not in cursor  # the cursor names no number
        # The reads while paging were logged too (under the current number, after the first page): compare the
        # entries the whole read had.
        assert [e["request_id"] for e in paged if e["request_id"] in {x["request_id"] for x in entries}] == [
            e["request_id"] for e in entries
        ]
        # A reader who may not see identity gets the entries, not the other numbers.
        hidden = await client.get(f"/v1/residents/{NEW}/access-log", headers=headers(stack.log_only, "audit"))
        assert hidden.status_code == 200, hidden.text
        assert "aliases" not in hidden.json() and OLD not in hidden.text
        assert [e["citizen_id"] for e in hidden.json()["entries"] if e["request_id"] in old_reads] == [None] * 3
        # before_seq pages one chain; a person with several numbers is paged with before.
        refused = await client.get(
            f"/v1/residents/{NEW}/access-log", params={"before_seq": 5}, headers=headers(stack.token, "audit")
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_before"
        stale = await client.get(
            f"/v1/residents/{NEW}/access-log", params={"before": "1/0:3"}, headers=headers(stack.token, "audit")
        )
        assert stale.status_code == 422 and "numbers changed" in stale.json()["error"]["message"]


async def test_a_citizen_sees_reads_under_every_number_they_held(stack: Stack, infra: Endpoints) -> None:
    old_reads = await _entries_under(stack, DUPLICATE, [datetime(2021, 5, 6, 10, tzinfo=UTC)])
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        for number in (SURVIVOR, DUPLICATE):  # the token may carry either number: it is the same person
            token = local_idp.issue(infra.state_dir, number)
            log = await client.get("/v1/me/access-log", headers={"Authorization": f"Bearer {token}"})
            assert log.status_code == 200, log.text
            assert log.json()["citizen_id"] == SURVIVOR and log.json()["aliases"] == [DUPLICATE]
            assert [e["citizen_id"] for e in log.json()["entries"] if e["request_id"] in old_reads] == [DUPLICATE]


async def test_operators_see_every_number_of_a_person(stack: Stack, infra: Endpoints) -> None:
    settings = settings_for(infra.kafka_bootstrap, stack.database_url, "")
    timeline = await renkou(settings, "audit", "timeline", LEGACY_OLD, "--json", "--operator", "li")
    assert timeline.code == 0, timeline.stderr
    body = orjson.loads(timeline.stdout)
    assert body["citizen_id"] == NEW and body["aliases"] == [OLD]
    assert sorted(e["citizen_id"] for e in body["events"]) == sorted([NEW, NEW, OLD, OLD, OLD])
    assert [e["occurred_at"] for e in body["events"]] == sorted(e["occurred_at"] for e in body["events"])
    table = await renkou(settings, "audit", "timeline", DUPLICATE, "--operator", "li")
    assert table.code == 0 and f"also held {DUPLICATE}" in table.stdout, table.stderr
    shown = await renkou(settings, "resident", "show", OLD, "--purpose", "complaint_review", "--operator", "li")
    assert shown.code == 0, shown.stderr
    assert orjson.loads(shown.stdout)["citizen_id"] == NEW and orjson.loads(shown.stdout)["aliases"] == [OLD]
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        logged = await conn.fetch("SELECT DISTINCT citizen_id FROM access_log WHERE consumer = 'operator:li'")
    finally:
        await conn.close()
    assert {r["citizen_id"] for r in logged} == {NEW, SURVIVOR}  # under the current numbers only


async def test_households_list_each_person_once_under_the_current_number(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        wuhou = await client.get("/v1/households/510107-00023456", headers=headers(stack.token, "audit"))
        jinjiang = await client.get(f"/v1/households/{HOUSEHOLD}", headers=headers(stack.token, "audit"))
    assert wuhou.status_code == 200, wuhou.text
    # Registered under the old number, shown under the new one; the cancelled duplicate is no member.
    assert sorted(m["citizen_id"] for m in wuhou.json()["members"]) == sorted([NEW, SURVIVOR])
    assert jinjiang.status_code == 200, jinjiang.text
    # The duplicate registration was merged, never cancelled: it is void, the woman is a member once.
    assert jinjiang.json()["members"] == [
        {"citizen_id": HEAD, "relationship": "head"},
        {"citizen_id": TWICE, "relationship": "spouse"},
    ]
    view = (await _read(stack, TWICE_DUPLICATE)).json()
    assert view["citizen_id"] == TWICE and view["hukou"]["household_id"] == HOUSEHOLD
    assert [m["citizen_id"] for m in view["family"]["household_members"]] == [HEAD, TWICE]
    # The head has one number and is read by the one-statement path: his household's members by person too.
    head = await _read(stack, HEAD)
    assert head.status_code == 200 and "aliases" not in head.json()
    assert [m["citizen_id"] for m in head.json()["family"]["household_members"]] == [HEAD, TWICE]
    survivor = (await _read(stack, SURVIVOR)).json()  # read by person: her household's man under his new number
    assert sorted(m["citizen_id"] for m in survivor["family"]["household_members"]) == sorted([NEW, SURVIVOR])


async def test_eligibility_is_decided_for_the_person(stack: Stack) -> None:
    answers = {}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30.0) as client:
        for number in (OLD, NEW):
            answer = await client.get(
                f"/v1/residents/{number}/eligibility",
                params={"policy": "chengdu-2017", "as_of": "2024-06-01"},
                headers=headers(stack.token, "audit"),
            )
            assert answer.status_code == 200, answer.text
            answers[number] = answer.json()
    assert answers[OLD] == answers[NEW] and answers[NEW]["citizen_id"] == NEW
    registered = next(e for e in _HISTORY if e["citizen_id"] == OLD and e["event_type"] == "hukou.registered")
    assert registered["event_id"] in orjson.dumps(answers[NEW]).decode()  # the old number's registration counts
