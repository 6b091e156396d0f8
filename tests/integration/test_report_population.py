"""The yearly population report against a real Kafka and PostgreSQL: a simulated Chengdu and Feicheng published
to the department topics and projected; the report must agree with ``GET /v1/statistics/population`` for the
same date, suppress small counts, come out byte-identical after a replay, and render in headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from events import topic_for
from events.citizen_id import make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.operations.replay import replay
from services.query_api.app import create_app
from services.reports import population_report, render_html, to_csv, write_report
from services.reports.population import CELLS, PopulationReport
from services.settings import Settings
from services.simulator import city_by_key, simulate_bytes
from tests.support.browser import OFFLINE_FLAGS
from tests.support.infra import Endpoints
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.query_api import grant, headers, settlement
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

YEAR = 2024
AS_OF = date(YEAR, 12, 31)
SHADOW = "projection_report_shadow"


@dataclass(frozen=True)
class City:
    settings: Settings
    database_url: str
    token: str


@pytest.fixture(scope="module")
async def city(infra: Endpoints) -> AsyncIterator[City]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    items = simulate_bytes(1500, years=20, seed=11, cities=[city_by_key("chengdu"), city_by_key("feicheng")])
    await publish(infra.kafka_bootstrap, [(f"{ns}population.{d}.v1", k, v) for d, k, v in items])
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings, 300.0)
    token = await grant(db, "statistics-bureau", ["statistics"], ["planning"])
    try:
        yield City(settings, db, token)
    finally:
        await databases.drop_all()


async def _report(
    city: City, region: str | None, schema: str = "projection", known_at: datetime | None = None
) -> PopulationReport:
    conn = await asyncpg.connect(asyncpg_dsn(city.database_url))
    try:
        return await population_report(conn, YEAR, region, schema, known_at=known_at)
    finally:
        await conn.close()


async def _endpoint(city: City, region: str) -> dict[str, Any]:
    app = create_app(Settings(database_url=SecretStr(city.database_url)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://query-api") as client:
            response = await client.get(
                "/v1/statistics/population",
                params={"region_code": region, "as_of": AS_OF.isoformat()},
                headers=headers(city.token, "planning"),
            )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _endpoint_counts(figures: dict[str, Any]) -> dict[str, int]:
    out = {}
    for measure in ("registered", "resident", "permit_holders"):
        out[measure] = figures[measure]["population"]
        out[f"{measure}_urban"] = figures[measure]["urban"]
    return out


async def test_the_report_matches_the_statistics_endpoint(city: City) -> None:
    report = await _report(city, "5101")
    endpoint = await _endpoint(city, "5101")
    by_code = {d["region_code"]: d for d in endpoint["districts"]}
    assert [row.region_code for row in report.rows] == sorted(by_code)
    assert len(report.rows) >= 8
    shown_cells = 0
    for row in (*report.rows, report.total):
        figures = by_code[row.region_code] if row.region_code else endpoint
        expected = _endpoint_counts(figures)
        for cell in CELLS:
            value = row.count(cell)
            if value is not None:
                assert value == expected[cell], (row.region_code, cell)
                shown_cells += 1
        for measure in ("registered", "resident", "permit_holders"):
            share = row.share(measure)
            if share is not None:
                assert share == figures[measure]["urban_share"], (row.region_code, measure)
        if row.gap_points is not None:
            assert row.gap_points == figures["urbanisation_gap_points"]
    assert shown_cells > 40
    # The CSV carries the same numbers (suppressed cells empty).
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [r["region_code"] for r in rows] == [*sorted(by_code), "total"]
    for r in rows[:-1]:
        figures = by_code[r["region_code"]]
        if r["registered_population"]:
            assert int(r["registered_population"]) == figures["registered"]["population"]
        if r["resident_urban_share"]:
            assert float(r["resident_urban_share"]) == figures["resident"]["urban_share"]


async def test_small_counts_are_suppressed_and_cannot_be_recovered_from_the_total(city: City) -> None:
    report = await _report(city, None)
    assert {row.region_code[:4] for row in report.rows if row.region_code} >= {"5101", "3709"}
    hidden = 0
    for cell in CELLS:
        column = [row.count(cell) for row in report.rows]
        for row in (*report.rows, report.total):
            value = row.count(cell)
            assert value is None or value == 0 or value >= 10, (row.region_code, cell, value)
        suppressed = [v for v in column if v is None]
        hidden += len(suppressed)
        # One hidden district in a column would be the total minus the others: never one alone.
        assert len(suppressed) != 1 or report.total.count(cell) is None, cell
        for row in report.rows:
            raw = row.figures
            if row.count(cell) is None and cell in ("registered", "resident", "permit_holders"):
                assert getattr(raw, cell).population > 0
    assert hidden > 0  # the simulated city is small enough to have some


async def test_the_same_as_of_gives_the_same_report_after_a_replay(city: City, tmp_path: Path) -> None:
    live = await _report(city, "5101")
    again = await _report(city, "5101")
    assert to_csv(live) == to_csv(again) and render_html(live) == render_html(again)
    result = await replay(city.settings, SHADOW, fresh=True)
    assert result is not None
    rebuilt = await _report(city, "5101", SHADOW)
    assert to_csv(rebuilt) == to_csv(live)
    assert render_html(rebuilt) == render_html(live)
    first = write_report(live, tmp_path / "live")
    second = write_report(rebuilt, tmp_path / "replayed")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


_CLI = "import typer; from services.cli import policy_cmd; app = typer.Typer(); policy_cmd.register(app); app()"


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLI,
        *args,
        env={**os.environ, "RENKOU_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_writes_csv_and_html(city: City, tmp_path: Path) -> None:
    out_dir = tmp_path / "reports"
    code, out, err = await _cli(
        city.database_url, "report", "population", "--year", str(YEAR), "--region", "3709", "--out", str(out_dir)
    )
    assert code == 0, err
    csv_path, html_path = (Path(line) for line in out.splitlines())
    assert csv_path == out_dir / f"population-{YEAR}-3709.csv" and html_path.suffix == ".html"
    assert csv_path.read_text(encoding="utf-8") == to_csv(await _report(city, "3709"))
    page = html_path.read_text(encoding="utf-8")
    assert "<svg" in page and "<script" not in page and "src=" not in page and "href=" not in page
    code, _, err = await _cli(city.database_url, "report", "population", "--year", "24", "--out", str(out_dir))
    assert code == 2 and err.startswith("error: --year must be between")
    code, _, err = await _cli(
        city.database_url, "report", "population", "--year", "2024", "--region", "51a", "--out", str(out_dir)
    )
    assert code == 2 and "--region must be a region code prefix" in err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium)")
async def test_the_html_renders_in_headless_chromium(city: City, tmp_path: Path) -> None:
    report = await _report(city, "5101")
    _, html_path = write_report(report, tmp_path)
    png = tmp_path / "report.png"
    chromium = _chromium()
    assert chromium is not None
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *OFFLINE_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,900",
        f"file://{html_path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert png.is_file(), err.decode(errors="replace")[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 900)
    # A blank 1200x900 page compresses to a few kilobytes; text, bars and colours take far more.
    assert len(data) > 30_000, len(data)
    keep = os.environ.get("RENKOU_TEST_SCREENSHOT")
    if keep:
        shutil.copyfile(png, keep)


async def test_a_report_known_at_an_instant_is_the_same_after_late_events_and_a_replay(city: City) -> None:
    cut = datetime.now(UTC)
    first = await _report(city, "5101", known_at=cut)
    # Cut after everything the log holds, the archive's fold agrees with the live projection, figure for figure.
    assert to_csv(first) == to_csv(await _report(city, "5101"))
    assert "known-at" in render_html(first)
    # A late event: a settlement in 武侯区 recorded in 2023, reaching the log only now.
    newcomer = make_citizen_id("510107", date(1991, 4, 4), 77)
    late = settlement(newcomer, date(2023, 3, 1), "510107")
    await publish(
        city.settings.kafka_bootstrap,
        [(city.settings.topic_namespace + topic_for("public_security"), newcomer.encode(), orjson.dumps(late))],
    )
    async with running_projector(city.settings):
        await wait_caught_up(city.settings, 120.0)
    again = await _report(city, "5101", known_at=cut)
    assert to_csv(again) == to_csv(first) and render_html(again) == render_html(first)
    now = await _report(city, "5101", known_at=datetime.now(UTC))
    assert now.total.figures.registered.population == first.total.figures.registered.population + 1
    # After a rebuild from the log, the same instant gives the same report, byte for byte.
    result = await replay(city.settings, SHADOW, fresh=True)
    assert result is not None
    rebuilt = await _report(city, "5101", SHADOW, known_at=cut)
    assert to_csv(rebuilt) == to_csv(first) and render_html(rebuilt) == render_html(first)
