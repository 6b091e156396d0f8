"""The yearly population report: per district, registered and resident population, permit holders, their urban
shares, and the gap between the two urbanisation rates (Nantong (3): at most 3 points; (15): publish yearly).

The figures are the query API's statistics (``services.query_api.statistics.population_statistics``) for
31 December of the year — the same definitions, the same SQL, so the report and ``GET
/v1/statistics/population`` agree number for number. They are computed from the projection, which replay
rebuilds from the log: the same ``as_of`` gives the same report, byte for byte (nothing in it reads the clock).

Disclosure control: a count from 1 to ``min_count - 1`` (default 10) could point at individuals, so it is
suppressed, and so is the urban count when the rural remainder (population minus urban) is that small. Zero
is shown (it identifies nobody). Where a column has exactly one suppressed district, the next smallest is
suppressed as well (or the total, if there is none), so that the total minus the shown districts does not
give the hidden one back. Shares and the gap are shown only where the counts behind them are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import asyncpg

from events.citizen_id import division_name, lookup_division
from projections.resident.store import DEFAULT_SCHEMA
from services.query_api.statistics import (
    DistrictFigures,
    Figures,
    Measure,
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

MEASURES: Final = ("registered", "resident", "permit_holders")
CELLS: Final = (
    "registered",
    "registered_urban",
    "resident",
    "resident_urban",
    "permit_holders",
    "permit_holders_urban",
)
"""The counts of a row, in column order: each measure's population and how many of it are urban."""
GAP_TARGET_POINTS: Final = 3.0
"""Nantong (3): registered urbanisation no more than 3 points behind resident urbanisation."""

Counts = Mapping[str, int]
Shown = dict[str, int | None]


def _counts(figures: Figures) -> dict[str, int]:
    out: dict[str, int] = {}
    for measure in MEASURES:
        m: Measure = getattr(figures, measure)
        out[measure] = m.population
        out[f"{measure}_urban"] = m.urban
    return out


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
        if self.shown[measure] is None or self.shown[f"{measure}_urban"] is None:
            return None
        share = getattr(self.figures, measure).urban_share
        return round(share, 6) if share is not None else None

    @property
    def gap_points(self) -> float | None:
        """Resident minus registered urbanisation in points, if both shares may be shown."""
        if self.share("registered") is None or self.share("resident") is None:
            return None
        return self.figures.urbanisation_gap_points

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
# Suppression (pure)
# ---------------------------------------------------------------------------------------------------------


def _small(value: int, min_count: int) -> bool:
    return 0 < value < min_count


def _primary(counts: Counts, min_count: int) -> Shown:
    shown: Shown = dict(counts)
    for measure in MEASURES:
        population, urban = counts[measure], counts[f"{measure}_urban"]
        if _small(population, min_count):
            shown[measure] = None
        # The urban count gives the rural one away (population minus urban) unless both are safe to show.
        if shown[measure] is None or _small(urban, min_count) or _small(population - urban, min_count):
            shown[f"{measure}_urban"] = None
    return shown


def suppress(districts: Sequence[Counts], total: Counts, min_count: int = 10) -> tuple[list[Shown], Shown]:
    """What may be shown of each district's counts and of the total (``None`` = suppressed); pure.

    Primary suppression hides counts from 1 to ``min_count - 1`` (and urban counts whose rural remainder is
    that small); secondary suppression makes sure no column has a single hidden district that the total and
    the other districts would give back.
    """
    shown = [_primary(d, min_count) for d in districts]
    total_shown = _primary(total, min_count)
    # Hiding a cell can leave another column with a lone hidden district (an urban count goes with its
    # population): repeat until nothing changes. Each round only hides more, so this ends.
    changed = True
    while changed:
        changed = False
        for cell in CELLS:
            hidden = [i for i, s in enumerate(shown) if s[cell] is None]
            if len(hidden) != 1 or total_shown[cell] is None:
                continue
            candidates = sorted(
                (d[cell], i)
                for i, (d, s) in enumerate(zip(districts, shown, strict=True))
                if s[cell] is not None and d[cell] > 0
            )
            if candidates:
                shown[candidates[0][1]][cell] = None
            else:
                total_shown[cell] = None
            changed = True
        for s in (*shown, total_shown):
            for measure in MEASURES:
                # An urban count without its population gives nothing useful: hide it with it.
                if s[measure] is None and s[f"{measure}_urban"] is not None:
                    s[f"{measure}_urban"] = None
                    changed = True
    return shown, total_shown


# ---------------------------------------------------------------------------------------------------------
# Building the report (I/O)
# ---------------------------------------------------------------------------------------------------------


async def regions_present(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """The 2-digit province prefixes of every region code any hukou, residence or permit names (now or before)."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"invalid schema name {schema!r}")
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT left(code, 2) AS province FROM (
            SELECT s.state #>> '{{hukou,region_code}}' AS code FROM {schema}.sections s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT s.state #>> '{{residence_registration,region_code}}' FROM {schema}.sections s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT s.state #>> '{{permit,region_code}}' FROM {schema}.sections s
             WHERE s.department = 'public_security'
            UNION ALL
            SELECT e ->> 'region_code' FROM {schema}.sections s,
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
) -> PopulationReport:
    """The report of ``year`` for the region prefix ``region`` (2, 4 or 6 digits; None: every region).

    Raises ``ValueError`` for a malformed prefix or a year outside 1949-9998.
    """
    if not 1949 <= year <= 9998:
        raise ValueError(f"year must be between 1949 and 9998, got {year}")
    if region is not None:
        validate_region_prefix(region)
    as_of = date(year, 12, 31)
    prefixes = [region] if region is not None else await regions_present(conn, schema)
    districts: list[DistrictFigures] = []
    for prefix in prefixes:
        districts.extend((await population_statistics(conn, prefix, as_of, schema)).districts)
    districts.sort(key=lambda d: d.region_code)
    total = Figures()
    for district in districts:
        total = total + district.figures
    shown, total_shown = suppress([_counts(d.figures) for d in districts], _counts(total), min_count)
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
