"""Statistical disclosure control: the one rule by which renkou publishes counts of people (CONTRACT §11).

Both the query API's ``GET /v1/statistics/population`` and the yearly report show counts through ``suppress``:

* **primary suppression** — a count from 1 to ``MIN_COUNT - 1`` could point at individuals, so it is hidden;
  so is an urban count whose rural remainder (population minus urban) is that small, and an urban count whose
  population is hidden. Zero is shown: it identifies nobody.
* **complementary suppression** — in each column, the hidden cells must not be given back by the total minus the
  shown districts: while a column has exactly one hidden district, or hidden districts whose sum is from 1 to
  ``MIN_COUNT - 1``, the smallest shown non-zero district is hidden too (the total, if there is none).

The date counted is the end of a month (``month_end``): day-by-day differences of the same region's totals would
show single registrations coming and going.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from services.query_api.statistics import Figures

__all__ = ["CELLS", "MEASURES", "MIN_COUNT", "Counts", "Shown", "counts_of", "month_end", "shown_json", "suppress"]

MIN_COUNT: Final = 10
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

Counts = Mapping[str, int]
Shown = dict[str, int | None]


def month_end(day: date) -> date:
    """The latest end of a month on or before ``day`` (``day`` itself when it is one)."""
    last = calendar.monthrange(day.year, day.month)[1]
    if day.day == last:
        return day
    return day.replace(day=1) - timedelta(days=1)


def counts_of(figures: Figures) -> dict[str, int]:
    """The six counts of ``figures`` by cell name."""
    out: dict[str, int] = {}
    for measure in MEASURES:
        m = getattr(figures, measure)
        out[measure] = m.population
        out[f"{measure}_urban"] = m.urban
    return out


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


def _exposed(hidden_values: Sequence[int], min_count: int) -> bool:
    """Whether hidden cells whose values are ``hidden_values`` are given back by the total minus the rest."""
    return len(hidden_values) == 1 or _small(sum(hidden_values), min_count)


def suppress(districts: Sequence[Counts], total: Counts, min_count: int = MIN_COUNT) -> tuple[list[Shown], Shown]:
    """What may be shown of each district's counts and of the total (``None`` = hidden); pure."""
    shown = [_primary(d, min_count) for d in districts]
    total_shown = _primary(total, min_count)
    # Each round only hides more (an urban count goes with its population, which can expose another column),
    # so this ends.
    changed = True
    while changed:
        changed = False
        for cell in CELLS:
            if total_shown[cell] is None:
                continue  # with the total hidden, the difference gives nothing back
            hidden = [d[cell] for d, s in zip(districts, shown, strict=True) if s[cell] is None]
            if not hidden or not _exposed(hidden, min_count):
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
                if s[measure] is None and s[f"{measure}_urban"] is not None:
                    s[f"{measure}_urban"] = None
                    changed = True
    return shown, total_shown


def share(figures: Figures, shown: Shown, measure: str) -> float | None:
    """The urban share of ``measure`` (a fraction, six decimals) if both counts behind it may be shown."""
    if shown[measure] is None or shown[f"{measure}_urban"] is None:
        return None
    value = getattr(figures, measure).urban_share
    return round(value, 6) if value is not None else None


def gap_points(figures: Figures, shown: Shown) -> float | None:
    """Resident minus registered urbanisation in points, if both shares may be shown."""
    if share(figures, shown, "registered") is None or share(figures, shown, "resident") is None:
        return None
    return figures.urbanisation_gap_points


def shown_json(figures: Figures, shown: Shown) -> dict[str, Any]:
    """The statistics endpoint's figures with hidden counts (and the shares and gap they would give) as null."""
    out: dict[str, Any] = {}
    for measure in MEASURES:
        out[measure] = {
            "population": shown[measure],
            "urban": shown[f"{measure}_urban"],
            "urban_share": share(figures, shown, measure),
        }
    out["urbanisation_gap_points"] = gap_points(figures, shown)
    return out
