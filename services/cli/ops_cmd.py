"""``renkou replay|verify|swap|status|drop-schema``: rebuild without downtime, and see where the projection stands.

Thin shells around ``services.operations``: arguments in, Rich out. Progress bars go to stderr, results to
stdout (``--json`` where a machine reads them); an ``OperationError`` becomes a one-line error and its exit code.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from services.cli.common import fail, print_json
from services.operations.base import OperationError, quiet_kafka_logs
from services.operations.replay import DEFAULT_BATCH, ReplayReport, default_workers
from services.operations.schemas import DEFAULT_SHADOW
from services.settings import get_settings

T = TypeVar("T")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ShadowOption = Annotated[str, typer.Option("--shadow", help="The shadow schema to rebuild into.")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, help="Worker processes (default: one per core).")
]
BatchOption = Annotated[int, typer.Option("--batch", min=1, max=50_000, help="Records per transaction.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def run_operation(coro: Coroutine[Any, Any, T]) -> T:
    """Run an operator task; its ``OperationError`` becomes ``error: …`` on one line and its exit code."""
    quiet_kafka_logs()
    try:
        return asyncio.run(coro)
    except OperationError as exc:
        fail(str(exc), exc.code)
    except KeyboardInterrupt:
        fail("interrupted; nothing half-done was kept (each batch commits whole) — run the command again", 130)


class RateColumn(ProgressColumn):
    """Events per second, from Rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("—" if speed is None else f"{speed:,.0f} events/s", style="cyan")


@contextmanager
def progress_bar(label: str) -> Iterator[Any]:
    """A Rich progress bar on stderr (events done/all, events/s, ETA); yields the callback replay reports to.

    The bar appears with the first report: a command with nothing to replay shows none.
    """
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    tasks: list[Any] = []

    def update(done: int, total: int) -> None:
        if not tasks:
            if total == 0:
                return
            bar.start()
            tasks.append(bar.add_task(label, total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


def _replay_line(report: ReplayReport) -> str:
    s = report.stats
    return (
        f"{report.events:,} events in {report.seconds:.1f} s ({report.rate:,.0f} events/s, {report.workers} "
        f"worker{'s' if report.workers != 1 else ''}): {s.applied:,} applied, {s.duplicates:,} duplicates, "
        f"{s.dead_letters:,} dead letter{'s' if s.dead_letters != 1 else ''}"
    )


def replay(
    shadow: ShadowOption = DEFAULT_SHADOW,
    fresh: Annotated[bool, typer.Option("--fresh", help="Drop the shadow and start again from offset 0.")] = False,
    workers: WorkersOption = None,
    batch: BatchOption = DEFAULT_BATCH,
) -> None:
    """Rebuild the resident view from offset 0 of the department topics into a shadow schema (resumable)."""
    from services.operations.replay import replay as run_replay

    settings = get_settings()
    with progress_bar(f"replay → {shadow}") as progress:
        report = run_operation(
            run_replay(
                settings,
                shadow,
                fresh=fresh,
                workers=workers or default_workers(),
                batch_size=batch,
                progress=progress,
            )
        )
    resumed = "" if report.created or not report.start else f" (resumed at {sum(report.start.values()):,})"
    if report.events == 0:
        console.print(f"{shadow} is already at the log end ({sum(report.target.values()):,} events)")
    else:
        console.print(f"replayed into {shadow}{resumed}: {_replay_line(report)}")
    console.print("next: `renkou verify` compares it with the live view, `renkou swap` makes it live")


def verify(
    shadow: ShadowOption = DEFAULT_SHADOW,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Differing rows to show in full.")] = 20,
    workers: WorkersOption = None,
    batch: BatchOption = DEFAULT_BATCH,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a lagging live projection.")] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Rebuild into a shadow (or resume), bring it to the live checkpoints and compare both row by row."""
    from services.operations.verify import verify as run_verify

    settings = get_settings()
    with progress_bar(f"rebuild → {shadow}") as progress:
        report = run_operation(
            run_verify(
                settings,
                shadow,
                limit=limit,
                workers=workers or default_workers(),
                batch_size=batch,
                wait_live_s=wait,
                progress=progress,
            )
        )
    comparison = report.comparison
    if as_json:
        print_json(
            {
                "identical": report.identical,
                "shadow": shadow,
                "events": report.events,
                "tables": [t.__dict__ for t in comparison.tables],
                "differences": [
                    {
                        "table": d.table,
                        "key": d.key,
                        "kind": d.kind,
                        "citizen_id": d.citizen_id,
                        "columns": [c.__dict__ for c in d.columns],
                    }
                    for d in comparison.differences
                ],
            }
        )
    else:
        table = Table("table", "live rows", "rebuilt rows", "differing", title=f"projection vs {shadow}")
        for t in comparison.tables:
            mark = "[green]0[/green]" if t.differing == 0 else f"[red]{t.differing:,}[/red]"
            table.add_row(t.table, f"{t.live_rows:,}", f"{t.shadow_rows:,}", mark)
        console.print(table)
        for difference in comparison.differences:
            who = f"[bold]{difference.citizen_id}[/bold] " if difference.citizen_id else ""
            console.print(f"  {who}{difference.describe()}", soft_wrap=True)
    if not report.identical:
        fail(
            f"{comparison.differing_rows:,} rows differ between projection and {shadow} at {report.events:,} events",
            1,
        )
    if not as_json:
        console.print(
            f"[green]identical[/green] at {report.events:,} events (the live checkpoints): "
            f"`renkou swap{'' if shadow == DEFAULT_SHADOW else ' --shadow ' + shadow}` makes it live"
        )


def swap(
    shadow: ShadowOption = DEFAULT_SHADOW,
    force: Annotated[bool, typer.Option("--force", help="Swap even if verify has not passed.")] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for the lock.")] = 30.0,
    workers: WorkersOption = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a lagging live projection.")] = 60.0,
) -> None:
    """Make the verified shadow the live projection, atomically; the old schema is kept until dropped."""
    from services.operations.swap import swap as run_swap

    settings = get_settings()
    with progress_bar(f"catch up → {shadow}") as progress:
        report = run_operation(
            run_swap(
                settings,
                shadow,
                force=force,
                lock_timeout_s=lock_timeout,
                workers=workers or default_workers(),
                wait_live_s=wait,
                progress=progress,
            )
        )
    console.print(
        f"[green]✓[/green] {shadow} is now the live projection at {report.events:,} events; the projector waited "
        f"{report.locked_ms:,.0f} ms ({report.last_stretch.records:,} "
        f"event{'s' if report.last_stretch.records != 1 else ''} projected under the lock)"
    )
    console.print(
        f"the previous live schema is kept as [bold]{report.old_schema}[/bold]; "
        f"drop it with `renkou drop-schema {report.old_schema}`"
    )
    if report.anchor is not None:
        console.print(f"audit anchor: {report.anchor}")


def drop_schema(
    name: Annotated[str, typer.Argument(help="A shadow or an old projection schema (never `projection`).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop a shadow or an old projection schema kept by a swap."""
    from services.db.roles import OWNER
    from services.operations.base import database
    from services.operations.schemas import LIVE, check_name, drop_schema

    if name == LIVE:
        fail(f"refusing to drop {LIVE}: it is the live projection", 2)
    try:
        check_name(name)
    except OperationError as exc:
        fail(str(exc), exc.code)
    if not yes:
        if not sys.stdin.isatty():
            fail(f"dropping {name} needs --yes when not run interactively", 2)
        typer.confirm(f"drop schema {name} and everything in it?", abort=True)

    async def go() -> None:
        async with database(get_settings(), role=OWNER) as conn:
            await drop_schema(conn, name)

    run_operation(go())
    console.print(f"[green]✓[/green] dropped {name}")


def _age(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    ago = (
        f"{seconds:,.0f} s"
        if seconds < 120
        else f"{seconds / 60:,.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:,.1f} h"
    )
    return f"{moment.isoformat(timespec='seconds')} ({ago} ago)"


def status(as_json: JsonOption = False) -> None:
    """Per partition: checkpoint, log end, lag, the consumer group's offset; dead letters; the last batch."""
    from services.operations.status import status as read_status

    result = run_operation(read_status(get_settings()))
    if as_json:
        print_json(result.to_json())
        return
    table = Table(
        "topic",
        "part.",
        "checkpoint",
        "log end",
        "lag",
        "group offset",
        title=f"projection {result.partitions[0].projection if result.partitions else ''}: checkpoints vs log end",
    )
    for p in result.partitions:
        lag = f"[green]{p.lag:,}[/green]" if p.lag == 0 else f"[yellow]{p.lag:,}[/yellow]"
        committed = "-" if p.group_committed is None else f"{p.group_committed:,}"
        table.add_row(p.topic, str(p.partition), f"{p.checkpoint:,}", f"{p.log_end:,}", lag, committed)
    console.print(table)
    console.print(f"lag: [bold]{result.lag:,}[/bold] events behind the log end")
    console.print(
        f"dead letters: [bold]{result.dead_letters_pending:,}[/bold] pending, {result.dead_letters:,} in all "
        "(`renkou dlq list`)"
    )
    console.print(f"last batch: {_age(result.last_batch_at)}")
    others = [s for s in result.schemas if s.role != "live"]
    for s in others:
        note = s.note
        state = (
            "verified"
            if note.get("verified") is True
            else "differs"
            if note.get("verified") is False
            else "retired"
            if note.get("retired")
            else "not verified"
        )
        console.print(f"{s.role} schema {s.name}: {s.events:,} events, {state}")


def register(app: typer.Typer) -> None:
    """Add ``replay``, ``verify``, ``swap``, ``status`` and ``drop-schema`` to the root ``renkou`` app."""
    app.command("replay")(replay)
    app.command("verify")(verify)
    app.command("swap")(swap)
    app.command("status")(status)
    app.command("drop-schema")(drop_schema)
