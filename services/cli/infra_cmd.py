"""``renkou infra up|down|status``: the local Kafka and PostgreSQL, without Docker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.anchor.keys import anchor_key_path, ensure_anchor_key
from services.infra.ports import StackLayout
from services.infra.process import InfraError
from services.infra.stack import LocalStack
from services.settings import get_settings

app = typer.Typer(help="Start, stop and inspect the local Kafka and PostgreSQL.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--kafka-brokers",
        help="Kafka brokers for a new stack: 1, or 3 (one machine, a quorum of three controllers, every topic "
        "replicated three times with min.insync.replicas=2). An existing stack keeps the number it has.",
    ),
]


StandbyOption = Annotated[
    bool,
    typer.Option(
        "--pg-standby",
        help="Also run a hot standby of PostgreSQL (pg_basebackup, synchronous streaming replication) on the "
        "next port; `renkou failover` promotes it. A stack made with one keeps it.",
    ),
]


def _stack(kafka_brokers: int | None = None, pg_standby: bool = False) -> LocalStack:
    settings = get_settings()
    layout = StackLayout.from_settings(settings, kafka_brokers=kafka_brokers, pg_standby=pg_standby or None)
    return LocalStack(layout, namespace=settings.topic_namespace)


def _report(action: Callable[[LocalStack], list[str]], *, nothing: str = "nothing to do") -> None:
    """Run ``action`` on this stack and print what it did (``nothing`` when it did nothing); exit 1 on an error."""
    try:
        done = action(_stack())
    except InfraError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for line in done or [nothing]:
        console.print(f"[green]✓[/green] {line}")


@app.command()
def up(kafka_brokers: BrokersOption = None, pg_standby: StandbyOption = False) -> None:
    """Start Kafka and PostgreSQL if they are not running, create topics, migrate the schema."""
    try:
        done = _stack(kafka_brokers, pg_standby).up()
    except InfraError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    key = anchor_key_path(get_settings())
    if not key.exists():
        ensure_anchor_key(key)  # signs the audit anchors (CONTRACT §10); kept outside PostgreSQL
        done.append(f"created the audit anchor signing key {key}")
    for line in done or ["already up: nothing to do"]:
        console.print(f"[green]✓[/green] {line}")


@app.command()
def down() -> None:
    """Stop the Kafka and PostgreSQL this stack started (nothing else)."""
    _report(LocalStack.down, nothing="nothing of ours was running")


@app.command("standby-lost")
def standby_lost() -> None:
    """The PostgreSQL standby is lost: let the primary stop waiting for it, so that writes go on (each on the
    primary alone, until the standby streams again and is synchronous once more)."""
    _report(LocalStack.release_standby)


@app.command()
def status() -> None:
    """Show whether each service of the local stack runs and answers."""
    try:
        rows = _stack().status()
    except InfraError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table("service", "endpoint", "state", "pid", "detail")
    for row in rows:
        state = "[green]up[/green]" if row.running else "[red]down[/red]"
        table.add_row(row.name, row.endpoint, state, str(row.pid or "-"), row.detail)
    console.print(table)
    if not all(r.running for r in rows):
        raise typer.Exit(3)


def failover() -> None:
    """Promote the PostgreSQL standby: the old primary is stopped at once (fenced) if it still runs, the standby
    takes writes, and the services follow it on their next connection (no restart)."""
    _report(LocalStack.failover)
