"""``renkou audit timeline ID`` and ``renkou audit verify [ID]``: the archive and the access log, for auditors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from services.cli.common import citizen_id_arg, fail, print_json
from services.cli.ops_cmd import run_operation
from services.operations.audit import ChainReport, TimelineEntry, timeline, verify_chains
from services.operations.base import OperationError, database
from services.operations.schemas import LIVE, check_name
from services.settings import get_settings

app = typer.Typer(help="Audit trails: one resident's archived events; hash chains recomputed.", no_args_is_help=True)
console = Console(highlight=False)

SchemaOption = Annotated[str, typer.Option("--schema", help="Projection schema to read (a shadow or an old one, say).")]


def _schema(name: str) -> str:
    try:
        return check_name(name, allow_live=True)
    except OperationError as exc:
        fail(str(exc), exc.code)


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@app.command("timeline")
def timeline_cmd(
    citizen_id: Annotated[str, typer.Argument(help="The 18-character citizen ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="Every field in full, with the events, as JSON.")] = False,
    schema: SchemaOption = LIVE,
) -> None:
    """The archived events of one resident in business-time order: coordinates, both times, chain links."""
    cid = citizen_id_arg(citizen_id)
    where = _schema(schema)

    async def fetch() -> list[TimelineEntry]:
        async with database(get_settings()) as conn:
            return await timeline(conn, cid, schema=where)

    entries = run_operation(fetch())
    if as_json:
        print_json({"citizen_id": cid, "events": [e.to_json() for e in entries]})
        return
    table = Table(
        title=f"{cid}: {len(entries)} archived events",
        caption="topic: population.<department>.v1; `--json` adds event ids, full hashes and the events",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("occurred (UTC)", no_wrap=True, min_width=16)
    table.add_column("recorded (UTC)", no_wrap=True, min_width=16)
    table.add_column("department #", no_wrap=True, min_width=18)
    table.add_column("event_type", no_wrap=True, min_width=25)
    table.add_column("p@offset", no_wrap=True, min_width=8)
    table.add_column("prev_hash → hash", no_wrap=True, min_width=19)
    for e in entries:
        table.add_row(
            _moment(e.occurred_at),
            _moment(e.recorded_at),
            f"{e.department} #{e.chain_seq}",
            e.event_type,
            f"{e.partition}@{e.offset}",
            f"{e.prev_hash.hex()[:8]} → {e.hash.hex()[:8]}",
        )
    console.print(table)


@app.command("verify")
def verify_cmd(
    citizen_id: Annotated[str | None, typer.Argument(help="Only this resident's chains (default: all).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Broken links to list in detail.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    schema: SchemaOption = LIVE,
) -> None:
    """Recompute every hash chain of the event archive and the access log; exit 1 when any link is broken."""
    cid = None if citizen_id is None else citizen_id_arg(citizen_id)
    where = _schema(schema)

    async def check() -> ChainReport:
        async with database(get_settings()) as conn:
            return await verify_chains(conn, cid, schema=where, limit=limit)

    report = run_operation(check())
    if as_json:
        print_json(
            {
                "intact": report.intact,
                "archive": {"links": report.archive_links, "chains": report.archive_chains},
                "access_log": {"links": report.access_links, "chains": report.access_chains},
                "broken_total": report.broken_total,
                "broken": [b.__dict__ for b in report.broken],
            }
        )
    else:
        console.print(
            f"archive: {report.archive_links:,} links in {report.archive_chains:,} chains; "
            f"access log: {report.access_links:,} links in {report.access_chains:,} chains"
        )
        for link in report.broken:
            console.print(f"  [red]broken[/red] {link.describe()}", soft_wrap=True)
        if report.broken_total > len(report.broken):
            console.print(f"  … and {report.broken_total - len(report.broken):,} more (--limit)")
    if not report.intact:
        fail(f"{report.broken_total:,} broken chain links", 1)
    if not as_json:
        console.print("[green]every chain verifies[/green]")


def register(app_: typer.Typer) -> None:
    """Add the ``audit`` sub-app to the root ``renkou`` app."""
    app_.add_typer(app, name="audit")
