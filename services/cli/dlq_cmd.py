"""``renkou dlq list|show|redrive``: the records the projector rejected, and putting a fixed one back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import fail, print_json
from services.cli.ops_cmd import run_operation
from services.operations.base import OperationError, database, shorten
from services.operations.dlq import (
    Coordinates,
    DeadLetter,
    Redriven,
    dead_letter_headers,
    get_dead_letter,
    list_dead_letters,
    parse_coordinates,
    redrive,
    value_for_display,
)
from services.settings import get_settings

app = typer.Typer(help="Dead letters: list, show, re-drive after the cause is fixed.", no_args_is_help=True)
console = Console(highlight=False)

CoordinatesArg = Annotated[str, typer.Argument(help="TOPIC:PARTITION:OFFSET, as `renkou dlq list` shows it.")]


def _coordinates(raw: str) -> Coordinates:
    try:
        return parse_coordinates(raw)
    except OperationError as exc:
        fail(str(exc), exc.code)


@app.command("list")
def list_cmd(
    pending: Annotated[bool, typer.Option("--pending", help="Only those not re-driven yet.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """The dead letters of the live projection, oldest first."""

    async def fetch() -> tuple[list[DeadLetter], int]:
        async with database(get_settings()) as conn:
            return await list_dead_letters(conn, pending_only=pending, limit=limit)

    letters, count = run_operation(fetch())
    if as_json:
        print_json({"total": count, "dead_letters": [d.to_json(full=False) for d in letters]})
        return
    table = Table(title=f"{count} dead letter{'s' if count != 1 else ''}")
    table.add_column("topic:partition:offset", no_wrap=True)
    table.add_column("rejected (UTC)", no_wrap=True)
    table.add_column("event_id", no_wrap=True)
    table.add_column("reason", ratio=1)
    table.add_column("re-driven", no_wrap=True)
    for d in letters:
        table.add_row(
            d.coordinates,
            d.rejected_at.strftime("%Y-%m-%d %H:%M:%S"),
            (d.event_id or "-")[:8],
            shorten(d.reason, 90),
            d.redriven_at.strftime("%Y-%m-%d %H:%M") if d.redriven_at else "no",
        )
    console.print(table)
    if count > len(letters):
        console.print(f"… and {count - len(letters)} more (--limit)")


@app.command("show")
def show_cmd(
    coordinates: CoordinatesArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to search the dead-letter topic for headers.")] = 10.0,
) -> None:
    """One dead letter in full: reason, key, value (pretty JSON when it is JSON), headers from the DLQ topic."""
    where = _coordinates(coordinates)
    settings = get_settings()

    async def fetch() -> tuple[DeadLetter, list[tuple[str, bytes]] | None]:
        async with database(settings) as conn:
            letter = await get_dead_letter(conn, where)
        return letter, await dead_letter_headers(settings, where, wait_s=wait)

    letter, headers = run_operation(fetch())
    shown: dict[str, Any] = letter.to_json()
    shown["headers"] = None if headers is None else {k: v.decode("utf-8", errors="replace") for k, v in headers}
    if as_json:
        print_json(shown)
        return
    console.print(f"[bold]{letter.coordinates}[/bold]  event_id {letter.event_id or '-'}")
    console.print(f"rejected at {shown['rejected_at']}; re-driven: {shown['redriven_at'] or 'no'}")
    console.print(f"[bold]reason[/bold]: {letter.reason}", soft_wrap=True)
    console.print(f"[bold]key[/bold]: {shown['key']}")
    value = value_for_display(letter.value)
    if letter.omitted is not None:
        console.print(f"[bold]value[/bold]: {letter.omitted}", soft_wrap=True)
    else:
        console.print("[bold]value[/bold]:")
        console.print(
            json.dumps(value, ensure_ascii=False, indent=2) if not isinstance(value, str) else value, soft_wrap=True
        )
    if headers is None:
        console.print("[bold]headers[/bold]: not found on the dead-letter topic")
    else:
        console.print("[bold]headers[/bold]:")
        for k, v in shown["headers"].items():
            console.print(f"  {k}: {v}", soft_wrap=True)


@app.command("redrive")
def redrive_cmd(
    coordinates: CoordinatesArg,
    value_file: Annotated[
        Path | None,
        typer.Option("--value-file", help="The fixed record (JSON); must keep the dead letter's event_id."),
    ] = None,
    again: Annotated[bool, typer.Option("--again", help="Publish once more although already re-driven.")] = False,
) -> None:
    """Publish a dead letter's record (or its fixed version) to its department topic; it is applied once."""
    where = _coordinates(coordinates)
    value = None
    if value_file is not None:
        try:
            value = value_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {value_file}: {exc.strerror or exc}", 2)
    result: Redriven = run_operation(redrive(get_settings(), where, value=value, again=again))
    console.print(
        f"[green]✓[/green] re-drove {result.dead_letter} (event {result.event_id}) to "
        f"{result.topic}:{result.partition}:{result.offset}; the projector applies it once"
    )


def register(app_: typer.Typer) -> None:
    """Add the ``dlq`` sub-app to the root ``renkou`` app."""
    app_.add_typer(app, name="dlq")
