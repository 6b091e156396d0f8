"""The yearly population report: per district, registered and resident population, permit holders, their urban
shares, and the gap between the two urbanisation rates (Nantong (3): at most 3 points; (15): publish yearly).

The figures are the query API's statistics (``services.query_api.statistics.population_statistics``) for
31 December of the year — the same definitions, the same SQL, so the report and ``GET
/v1/statistics/population`` agree number for number. They are computed from the projection, which replay
rebuilds from the log: the same ``as_of`` gives the same report, byte for byte (nothing in it reads the clock).

Disclosure control is the statistics endpoint's own rule (``services.disclosure``): no count from 1 to
``min_count - 1`` (default 10), directly or as the total minus the shown districts. Shares and the gap are shown
only where the counts behind them are.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import asyncpg

from events.citizen_id import division_name, lookup_division
from projections.resident import tables
from projections.resident.tables import DEFAULT_SCHEMA, named
from services.disclosure import CELLS, MEASURES, Shown, counts_of, gap_points, share, suppress
from services.query_api.statistics import (
    DistrictFigures,
    Figures,
    people_known_at,
    population_statistics,
    validate_region_prefix,
)

__all__ = [
    "CELLS",
    "GAP_TARGET_POINTS",
    "MEASURES",
    "PopulationReport",
    "ReportRow",
    "population_report",
    "regions_present",
    "suppress",
    "to_csv",
]

GAP_TARGET_POINTS: Final = 3.0
"""Nantong (3): registered urbanisation no more than 3 points behind resident urbanisation."""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One district (or the total, ``region_code`` None) with its raw figures and what may be shown."""

    region_code: str | None
    name: str
    figures: Figures
    shown: Shown

    def count(self, cell: str) -> int | None:
        """The count of ``cell`` if it may be shown, else ``None`` (suppressed)."""
        return self.shown[cell]

    def share(self, measure: str) -> float | None:
        """The urban share (a fraction, as the statistics endpoint rounds it) if both counts behind it show."""
        return share(self.figures, self.shown, measure)

    @property
    def gap_points(self) -> float | None:
        """Resident minus registered urbanisation in points, if both shares may be shown."""
        return gap_points(self.figures, self.shown)

    @property
    def suppressed(self) -> list[str]:
        return [cell for cell in CELLS if self.shown[cell] is None]


@dataclass(frozen=True, slots=True)
class PopulationReport:
    """The report of ``year`` (figures on ``as_of`` = 31 December) for ``region`` (a prefix; None: everywhere)."""

    year: int
    as_of: date
    region: str | None
    rows: tuple[ReportRow, ...]
    total: ReportRow
    min_count: int
    known_at: datetime | None = None
    """The instant of the log the figures are cut at (``None``: the live projection as it stands)."""

    @property
    def region_name(self) -> str:
        if self.region is None:
            return "all regions"
        code = self.region.ljust(6, "0")
        return f"{division_name(code) or self.region} ({self.region})"

    @property
    def stem(self) -> str:
        return f"population-{self.year}-{self.region or 'all'}"


# ---------------------------------------------------------------------------------------------------------
# Building the report (I/O)
# ---------------------------------------------------------------------------------------------------------


async def regions_present(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """The 2-digit province prefixes of every region code any hukou, residence or permit names (now or before)."""
    sections = named(tables.sections, schema)
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT left(code, 2) AS province FROM (
            SELECT s.state #>> '{{hukou,region_code}}' AS code FROM {sections} s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT s.state #>> '{{residence_registration,region_code}}' FROM {sections} s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT s.state #>> '{{permit,region_code}}' FROM {sections} s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT e ->> 'region_code' FROM {sections} s,
                   jsonb_array_elements(coalesce(s.state #> '{{hukou,history}}', '[]'::jsonb)
                                        || coalesce(s.state -> 'residence_history', '[]'::jsonb)
                                        || coalesce(s.state -> 'permit_history', '[]'::jsonb)) e
             WHERE s.department = 'public_security'
        ) c
        WHERE code ~ '^[0-9]{{6}}$'
        ORDER BY 1
        """
    )
    return [r["province"] for r in rows]


def _name(code: str) -> str:
    """The district's latest name without its province (``武侯区``); the code itself if GB/T 2260 lacks it."""
    division = lookup_division(code)
    return division.names[-1] if division is not None and division.names else code


async def population_report(
    conn: asyncpg.Connection,
    year: int,
    region: str | None = None,
    schema: str = DEFAULT_SCHEMA,
    *,
    min_count: int = 10,
    known_at: datetime | None = None,
) -> PopulationReport:
    """The report of ``year`` for the region prefix ``region`` (2, 4 or 6 digits; None: every region), of what
    the log held at ``known_at`` if given (then the same ``known_at`` gives the same report, byte for byte,
    whatever arrives later and after a replay).

    Raises ``ValueError`` for a malformed prefix or a year outside 1949-9998.
    """
    if not 1949 <= year <= 9998:
        raise ValueError(f"year must be between 1949 and 9998, got {year}")
    if region is not None:
        validate_region_prefix(region)
    as_of = date(year, 12, 31)
    prefixes = [region] if region is not None else await regions_present(conn, schema)
    districts: list[DistrictFigures] = []
    # A cut's people are folded from the archive once, for every province counted.
    known = await people_known_at(conn, schema, known_at) if known_at is not None else None
    for prefix in prefixes:
        figures = await population_statistics(conn, prefix, as_of, schema, known_at=known_at, known_people=known)
        districts.extend(figures.districts)
    districts.sort(key=lambda d: d.region_code)
    total = Figures()
    for district in districts:
        total = total + district.figures
    shown, total_shown = suppress([counts_of(d.figures) for d in districts], counts_of(total), min_count)
    rows = tuple(
        ReportRow(d.region_code, _name(d.region_code), d.figures, s) for d, s in zip(districts, shown, strict=True)
    )
    return PopulationReport(
        year=year,
        as_of=as_of,
        region=region,
        rows=rows,
        total=ReportRow(None, "total", total, total_shown),
        min_count=min_count,
        known_at=known_at,
    )


# ---------------------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------------------

CSV_COLUMNS: Final = (
    "region_code",
    "district",
    "registered_population",
    "registered_urban",
    "registered_urban_share",
    "resident_population",
    "resident_urban",
    "resident_urban_share",
    "permit_holders",
    "permit_holders_urban",
    "permit_holders_urban_share",
    "urbanisation_gap_points",
    "gap_within_3_points",
    "suppressed",
)


def _cell(value: int | float | None) -> str:
    return "" if value is None else str(value)


def _csv_row(row: ReportRow) -> list[str]:
    gap = row.gap_points
    return [
        row.region_code or "total",
        row.name,
        _cell(row.count("registered")),
        _cell(row.count("registered_urban")),
        _cell(row.share("registered")),
        _cell(row.count("resident")),
        _cell(row.count("resident_urban")),
        _cell(row.share("resident")),
        _cell(row.count("permit_holders")),
        _cell(row.count("permit_holders_urban")),
        _cell(row.share("permit_holders")),
        _cell(gap),
        "" if gap is None else ("yes" if gap <= GAP_TARGET_POINTS else "no"),
        ";".join(row.suppressed),
    ]


def to_csv(report: PopulationReport) -> str:
    """The report as CSV (UTF-8, one row per district and a total row; suppressed cells empty and named in the
    ``suppressed`` column; shares as fractions, the gap in percentage points, as the statistics endpoint)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in (*report.rows, report.total):
        writer.writerow(_csv_row(row))
    return buffer.getvalue()
