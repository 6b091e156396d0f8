"""Population statistics: registered, resident and permit-holder counts and urban shares on a date, by region
prefix — checked on a small city whose every person is counted by hand.

Chengdu districts 锦江 510104 and 武侯 510107 (urban), 金堂县 510121 (rural registrations), and Xining's 城东区
630102. The people, on 2025-06-30:

* A — born and registered in 510107 (urban).
* B — hukou in 510121 (rural) since 2010; registered as living in 510104 (urban) since 2024-01-01.
* C — hukou in 630102 (urban); living in 510107 since 2025-03-01 (under six months); permit of 510107 valid.
* D — hukou in 510107, cancelled for death on 2024-12-10.
* E — hukou in 510104 (urban); health certified the death on 2025-01-05, public security has not cancelled.
* F — hukou in 510104, moved out on 2025-01-01 and not registered anywhere since.
* G — hukou in 510121 (rural); living in 630102 (urban) since 2023-01-01; a 630102 permit revoked on 2025-05-01.
* H — settles in 510107 on 2025-07-15, after the date counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from events.citizen_id import make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.query_api.statistics import population_statistics
from tests.support.infra import Endpoints
from tests.support.query_api import event, grant, headers, project, running_query_api, settlement
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

A = make_citizen_id("510107", date(2000, 1, 1), 11)
B = make_citizen_id("510121", date(1985, 2, 2), 21)
C = make_citizen_id("630102", date(1990, 3, 3), 31)
D = make_citizen_id("510107", date(1940, 4, 4), 41)
E = make_citizen_id("510104", date(1945, 5, 5), 51)
F = make_citizen_id("510104", date(1970, 6, 6), 61)
G = make_citizen_id("510121", date(1992, 7, 7), 71)
H = make_citizen_id("510107", date(1999, 8, 8), 81)


def _live(cid: str, since: date, region: str, urban: bool) -> dict[str, Any]:
    return event("residence.registered", cid, since, region_code=region, urban=urban, since=since)


def _city() -> list[dict[str, Any]]:
    return [
        event("birth.registered", A, date(2000, 1, 5), birth_date=date(2000, 1, 1), region_code="510107", urban=True,
              household_id="H-A", drop=("mother_citizen_id", "father_citizen_id", "birth_certificate_no")),
        settlement(B, date(2010, 5, 1), "510121", urban=False),
        _live(B, date(2024, 1, 1), "510104", True),
        settlement(C, date(2012, 5, 1), "630102", urban=True),
        _live(C, date(2025, 3, 1), "510107", True),
        event("residence_permit.issued", C, date(2025, 3, 15), permit_no="P-C", region_code="510107",
              issued_on=date(2025, 3, 15), valid_until=date(2026, 3, 14)),
        settlement(D, date(1990, 1, 1), "510107", urban=True),
        event("hukou.cancelled", D, date(2024, 12, 10), reason="death"),
        settlement(E, date(1990, 1, 1), "510104", urban=True),
        event("death.certified", E, date(2025, 1, 5), died_on=date(2025, 1, 5), certificate_no="D-E",
              region_code="510104"),
        settlement(F, date(1995, 1, 1), "510104", urban=True),
        event("hukou.moved_out", F, date(2025, 1, 1), to_region_code="630102"),
        settlement(G, date(2010, 6, 1), "510121", urban=False),
        _live(G, date(2023, 1, 1), "630102", True),
        event("residence_permit.issued", G, date(2023, 8, 1), permit_no="P-G", region_code="630102",
              issued_on=date(2023, 8, 1), valid_until=date(2026, 7, 31)),
        event("residence_permit.revoked", G, date(2025, 5, 1), permit_no="P-G"),
        settlement(H, date(2025, 7, 15), "510107", urban=True),
    ]  # fmt: skip


@dataclass
class City:
    url: str
    database_url: str
    auth: dict[str, str]


@pytest.fixture(scope="module")
async def city(infra: Endpoints) -> AsyncIterator[City]:
    databases = Databases(infra)
    db = await databases.create()
    await project(db, _city())
    token = await grant(db, "statistics-bureau", ["statistics"], ["yearly_report"])
    try:
        async with running_query_api(db) as api:
            yield City(api.url, db, headers(token, "yearly_report"))
    finally:
        await databases.drop_all()


def _measure(population: int, urban: int) -> dict[str, Any]:
    return {
        "population": population,
        "urban": urban,
        "urban_share": round(urban / population, 6) if population else None,
    }


async def _get(city: City, region_code: str, as_of: str) -> dict[str, Any]:
    """The figures as computed, before disclosure control: the definitions checked on a city counted by hand
    (the API publishes them only through ``services.disclosure``, see the last tests)."""
    conn = await asyncpg.connect(asyncpg_dsn(city.database_url))
    try:
        return (await population_statistics(conn, region_code, date.fromisoformat(as_of))).to_json()
    finally:
        await conn.close()


async def _published(city: City, region_code: str, as_of: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=city.url, headers=city.auth) as client:
        response = await client.get("/v1/statistics/population", params={"region_code": region_code, "as_of": as_of})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_chengdu_on_2025_06_30(city: City) -> None:
    figures = await _get(city, "5101", "2025-06-30")
    assert figures["region_code"] == "5101" and figures["as_of"] == "2025-06-30"
    assert figures["registered"] == _measure(3, 1)  # A (urban), B and G (rural)
    assert figures["resident"] == _measure(2, 2)  # A at home, B in 510104 for 18 months
    assert figures["permit_holders"] == _measure(1, 1)  # C, living in urban 510107
    assert figures["urbanisation_gap_points"] == pytest.approx((1.0 - 1 / 3) * 100, abs=1e-3)
    districts = {d["region_code"]: d for d in figures["districts"]}
    assert set(districts) == {"510104", "510107", "510121"}
    assert districts["510104"]["registered"] == _measure(0, 0) and districts["510104"]["resident"] == _measure(1, 1)
    assert districts["510107"]["permit_holders"] == _measure(1, 1)
    assert districts["510121"]["registered"] == _measure(2, 0) and districts["510121"]["resident"] == _measure(0, 0)
    assert districts["510121"]["urbanisation_gap_points"] is None
    assert await _get(city, "51", "2025-06-30") == {**figures, "region_code": "51"}


async def test_xining_and_a_single_district(city: City) -> None:
    xining = await _get(city, "63", "2025-06-30")
    assert xining["registered"] == _measure(1, 1)  # C (away for under six months still counts at home)
    assert xining["resident"] == _measure(2, 2)  # C at home, G living there for 2.5 years
    assert xining["permit_holders"] == _measure(0, 0)  # G's permit was revoked
    wuhou = await _get(city, "510107", "2025-06-30")
    assert (wuhou["registered"], wuhou["resident"], wuhou["permit_holders"]) == (
        _measure(1, 1),
        _measure(1, 1),
        _measure(1, 1),
    )


async def test_an_earlier_date_counts_the_registrations_in_force_then(city: City) -> None:
    chengdu = await _get(city, "5101", "2024-12-31")
    # E alive, F not yet moved out, D already dead; C's permit not yet issued.
    assert chengdu["registered"] == _measure(5, 3)  # A, E, F urban; B, G rural
    assert chengdu["resident"] == _measure(4, 4)  # A, B (510104), E, F
    assert chengdu["permit_holders"] == _measure(0, 0)
    assert (await _get(city, "63", "2025-04-30"))["permit_holders"] == _measure(1, 1)  # G's, before revocation
    empty = await _get(city, "4401", "2025-06-30")
    assert empty["registered"] == _measure(0, 0) and empty["urbanisation_gap_points"] is None
    assert empty["districts"] == []


async def test_the_api_publishes_no_count_that_could_point_at_someone(city: City) -> None:
    """A city this small has only counts under 10: the API hides every one of them (and the shares they would
    give), says which, and counts at the end of the month before the date asked."""
    published = await _published(city, "5101", "2025-07-20")
    assert published["as_of"] == "2025-06-30" and published["requested_as_of"] == "2025-07-20"
    for row in (published, *published["districts"]):
        for measure in ("registered", "resident", "permit_holders"):
            population, urban = row[measure]["population"], row[measure]["urban"]
            assert population is None or population == 0 or population >= 10, row
            assert urban is None or urban == 0 or urban >= 10, row
    assert published["registered"] == {"population": None, "urban": None, "urban_share": None}
    assert published["urbanisation_gap_points"] is None
    assert "total.registered" in published["disclosure"]["suppressed"]
    assert published["disclosure"]["min_count"] == 10
    # A day later in the month gives the same answer: no day-by-day differences.
    again = await _published(city, "5101", "2025-07-21")
    assert {**again, "requested_as_of": None} == {**published, "requested_as_of": None}


async def test_region_codes_are_validated(city: City) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(city.database_url))
    try:
        with pytest.raises(ValueError, match="2, 4 or 6 digits"):
            await population_statistics(conn, "5", date(2025, 6, 30))
    finally:
        await conn.close()


async def test_known_at_counts_what_the_log_held_then(city: City) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(city.database_url))
    try:
        live = await population_statistics(conn, "5101", date(2025, 6, 30))
        later = await population_statistics(conn, "5101", date(2025, 6, 30), known_at=datetime.now(UTC))
        before = await population_statistics(conn, "5101", date(2025, 6, 30), known_at=datetime(1985, 1, 1, tzinfo=UTC))
    finally:
        await conn.close()
    # Everything archived by now: the archive's fold gives the live projection's figures, district by district.
    assert {k: v for k, v in later.to_json().items() if k != "known_at"} == live.to_json()
    assert later.to_json()["known_at"].endswith("Z")
    # These events were applied without a broker's stamp (the test's own pipeline): they count by their recorded
    # time, the earliest in 1990; in 1985 the log knew of none of them.
    assert before.total.registered.population == 0 and before.districts == ()
    async with httpx.AsyncClient(base_url=city.url, headers=city.auth) as client:
        answer = await client.get(
            "/v1/statistics/population",
            params={"region_code": "5101", "as_of": "2025-06-30", "known_at": "2020-01-01T00:00:00Z"},
        )
        bad = await client.get("/v1/statistics/population", params={"region_code": "5101", "known_at": "yesterday"})
    assert answer.status_code == 200 and answer.json()["known_at"] == "2020-01-01T00:00:00Z", answer.text
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_known_at"
