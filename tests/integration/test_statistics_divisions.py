"""Statistics and the yearly report count districts as they were in force on the day counted (GB/T 2260 history):
a hukou recorded in a county since made a district is counted under that district, never next to it.

双流县 510122 became 双流区 510116 in 2015/16; 简阳市 moved from 资阳 (512081) to Chengdu (510185) in 2016.

* I — hukou in 双流县 510122 since 2010.
* J — hukou in 双流区 510116 since 2020.
* K — hukou in 简阳市 512081 since 2010.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import pytest

from events.citizen_id import make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.query_api.statistics import population_statistics
from services.reports import population_report, to_csv
from tests.support.infra import Endpoints
from tests.support.query_api import project, settlement
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

I = make_citizen_id("510122", date(1980, 1, 1), 11)  # noqa: E741 - the people are named by letter
J = make_citizen_id("510116", date(1995, 2, 2), 21)
K = make_citizen_id("512081", date(1985, 3, 3), 31)


@pytest.fixture(scope="module")
async def database(infra: Endpoints) -> AsyncIterator[str]:
    databases = Databases(infra)
    db = await databases.create()
    await project(
        db,
        [
            settlement(I, date(2010, 5, 1), "510122"),
            settlement(J, date(2020, 5, 1), "510116"),
            settlement(K, date(2010, 6, 1), "512081"),
        ],
    )
    try:
        yield db
    finally:
        await databases.drop_all()


async def _districts(database: str, prefix: str, as_of: date) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        figures = await population_statistics(conn, prefix, as_of)
    finally:
        await conn.close()
    return {d.region_code: d.figures.registered.population for d in figures.districts}


async def test_districts_are_those_in_force_on_the_day(database: str) -> None:
    # 2014: 双流县 still a county, 简阳 still in 资阳 (5120), outside Chengdu's prefix.
    assert await _districts(database, "5101", date(2014, 12, 31)) == {"510122": 1}
    assert await _districts(database, "51", date(2014, 12, 31)) == {"510122": 1, "512081": 1}
    # 2024: one 双流区 with both of its people, and 简阳 under Chengdu.
    assert await _districts(database, "5101", date(2024, 12, 31)) == {"510116": 2, "510185": 1}
    assert await _districts(database, "510116", date(2024, 12, 31)) == {"510116": 2}
    assert await _districts(database, "5120", date(2024, 12, 31)) == {}


async def test_the_report_names_only_divisions_in_force(database: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        report = await population_report(conn, 2024, "5101", min_count=1)
    finally:
        await conn.close()
    assert [(row.region_code, row.name) for row in report.rows] == [("510116", "双流区"), ("510185", "简阳市")]
    csv = to_csv(report)
    assert "双流县" not in csv and "510122" not in csv and "512081" not in csv
