"""One person, several numbers (CONTRACT §12) over the real stack: a number change, a merged duplicate, reads by
every number and by the 15-digit legacy form, events under a superseded number after the change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.examples import CITIZENS
from services.db.dsn import asyncpg_dsn
from tests.integration.conftest import Databases, create_namespace
from tests.support.infra import Endpoints
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.query_api import event, grant, headers, running_query_api

pytestmark = pytest.mark.integration

OLD, NEW = CITIZENS["renumbered_before"], CITIZENS["renumbered"]
SURVIVOR, DUPLICATE = CITIZENS["survivor"], CITIZENS["duplicate"]
PUPIL = CITIZENS["pupil"]
LEGACY_OLD = OLD[:6] + OLD[8:17]  # the 15-digit form: no century, no check character
EMPLOYER_B = "91510104MA61XY7Q2"


@dataclass
class Stack:
    url: str
    database_url: str
    token: str


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
        # Someone with one number, read by the one-statement path.
        event("student.enrolled", PUPIL, date(2023, 9, 1)),
    ]


def _check(first17: str) -> str:
    from stdnum.cn import uscc

    return str(uscc.calc_check_digit(first17 + "0"))


@pytest.fixture(scope="module")
async def stack(infra: Endpoints) -> AsyncIterator[Stack]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    records = [
        (f"{ns}population.{e['source']['department']}.v1", e["citizen_id"].encode(), orjson.dumps(e))
        for e in _history()
    ]
    await publish(infra.kafka_bootstrap, records)
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    sections = ["identity", "hukou", "residence", "employment", "social_insurance", "education", "meta", "events"]
    token = await grant(db, "registry-check", by_purpose={"audit": sections})
    try:
        async with running_query_api(db) as api:
            yield Stack(api.url, db, token)
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
        logged = {r["citizen_id"] for r in await conn.fetch("SELECT DISTINCT citizen_id FROM access_log")}
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
