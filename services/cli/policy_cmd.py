"""``renkou eligibility ID --policy P [--as-of D]`` and ``renkou report population --year Y [--region P] --out DIR``.

Eligibility prints CONTRACT §7's answer as JSON on stdout (the same body as the query API's endpoint). The
population report writes a CSV and a self-contained HTML page per district and prints where it put them.
Bad input is one line on stderr and a non-zero exit: 2 for a bad argument, 3 when PostgreSQL cannot be reached,
4 when nothing is known about the resident on that date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from projections.eligibility import Policy, PolicyError, UnknownPolicyError
from services.cli.common import citizen_id_arg, database, date_arg, fail, print_json, run, timestamp_arg
from services.clock import today_in_china, utc_text
from services.query_api.statistics import validate_region_prefix
from services.reports import PopulationReport, population_report, write_report
from services.residents.eligibility import EligibilityAnswer, eligibility, resolve_policy

__all__ = ["register"]

err = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``eligibility`` and the ``report`` sub-app to the root ``renkou`` app."""
    app.command("eligibility")(eligibility_command)
    report = typer.Typer(help="Reports computed from the projection.", no_args_is_help=True)
    report.command("population")(population_command)
    app.add_typer(report, name="report")


def _policy(policy_id: str) -> Policy:
    try:
        return resolve_policy(policy_id)
    except UnknownPolicyError as exc:
        fail(str(exc), 2)
    except PolicyError as exc:
        fail(f"the policy file is not valid: {exc}", 1)


def eligibility_command(
    citizen_id: Annotated[str, typer.Argument(help="The 18-character citizen ID.")],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="The city's policy: xining-2015, nantong-2020, chengdu-2017, feicheng-2016 or liaoyuan-2015.",
        ),
    ],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Business date YYYY-MM-DD decided for (default: today in China).")
    ] = None,
) -> None:
    """Decide every benefit of a city's plan for one resident, each decision explained (JSON on stdout)."""
    cid = citizen_id_arg(citizen_id)
    chosen = _policy(policy)
    day = date_arg(as_of, "--as-of") or today_in_china()

    async def decide() -> EligibilityAnswer | None:
        async with database() as conn:
            return await eligibility(conn, cid, chosen, day)

    answer = run(decide())
    if answer is None:
        fail(f"nothing is known about {cid} on {day} (no archived event by then)", 4)
    print_json(answer.body)


def _year(raw: str) -> int:
    try:
        year = int(raw)
    except ValueError:
        fail(f"--year {raw!r} is not a year (e.g. 2024)", 2)
    if not 1949 <= year <= 9998:
        fail(f"--year must be between 1949 and 9998, got {year}", 2)
    return year


def population_command(
    year: Annotated[str, typer.Option("--year", help="The year: figures on 31 December of it.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the CSV and the HTML page into.")],
    region: Annotated[
        str | None,
        typer.Option("--region", help="Region code prefix: 2, 4 or 6 digits (default: every region)."),
    ] = None,
    known_at: Annotated[
        str | None,
        typer.Option(
            "--known-at",
            help="Count what the log held at this RFC 3339 instant (default: now, printed on the report); the "
            "same --known-at gives the same report, byte for byte, also after a replay.",
        ),
    ] = None,
) -> None:
    """The yearly population report per district: registered, resident, permit holders, urban shares and the
    urbanisation gap (CSV + HTML with a chart; counts 1-9 suppressed)."""
    chosen_year = _year(year)
    now = datetime.now(UTC).replace(microsecond=0)
    cut = timestamp_arg(known_at, "--known-at") or now
    try:
        cut = cut.astimezone(UTC)
    except OverflowError:
        fail(f"--known-at {known_at!r} is outside the calendar", 2)
    if cut > now:
        fail(f"--known-at {known_at!r} is in the future: what the log will hold is not known yet", 2)
    if region is not None:
        try:
            validate_region_prefix(region)
        except ValueError as exc:
            fail(str(exc).replace("region_code", "--region"), 2)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory", 2)

    async def build() -> PopulationReport:
        async with database() as conn:
            return await population_report(conn, chosen_year, region, known_at=cut)

    report = run(build())
    try:
        csv_path, html_path = write_report(report, out)
    except OSError as exc:
        fail(f"cannot write the report into {out}: {exc.strerror or exc}", 1)
    total = report.total
    err.print(
        f"{report.region_name}, {report.as_of}: {len(report.rows)} districts; registered "
        f"{total.count('registered') if total.count('registered') is not None else 'suppressed'}, resident "
        f"{total.count('resident') if total.count('resident') is not None else 'suppressed'}, gap "
        f"{total.gap_points if total.gap_points is not None else '—'} points; as the log knew it at "
        f"{utc_text(cut)} (--known-at reproduces it)"
    )
    typer.echo(str(csv_path))
    typer.echo(str(html_path))
