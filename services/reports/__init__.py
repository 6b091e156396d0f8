"""Reports computed from the projection: the yearly population report (CSV and a self-contained HTML page)."""

from __future__ import annotations

from pathlib import Path

from services.reports.html import render_html
from services.reports.population import PopulationReport, population_report, suppress, to_csv

__all__ = ["PopulationReport", "population_report", "render_html", "suppress", "to_csv", "write_report"]


def write_report(report: PopulationReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.html`` into ``out_dir`` (created if missing); return both paths.

    ``<stem>`` is ``population-<year>-<region or all>``; an existing report of the same stem is replaced.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{report.stem}.csv"
    html_path = out_dir / f"{report.stem}.html"
    csv_path.write_text(to_csv(report), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return csv_path, html_path
