"""``renkou up|down|run``: the whole local backbone, in the background or in the foreground."""

from __future__ import annotations

import signal
import threading

from rich.console import Console

from services.cli import infra_cmd

console = Console()


def up() -> None:
    """Start the stack in the background and return once every part of it answers."""
    infra_cmd.up()


def down() -> None:
    """Stop every part of the stack that this checkout started."""
    infra_cmd.down()


def run() -> None:
    """The main job: start everything, show where it answers, stay up until Ctrl-C, then stop cleanly."""
    infra_cmd.up()
    infra_cmd.status()
    console.print(
        "\n[bold]renkou is up.[/bold] Kafka and PostgreSQL answer at the endpoints above; "
        "`renkou infra status` shows them from another terminal. Press Ctrl-C to stop."
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("\nstopping...")
    infra_cmd.down()
