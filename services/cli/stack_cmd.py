"""``renkou up|down|run``: the whole local backbone, in the background or in the foreground."""

from __future__ import annotations

import signal
import threading

from rich.console import Console

from services.cli import infra_cmd
from services.cli.common import fail
from services.infra.apps import AppProcess, app_specs
from services.infra.process import InfraError
from services.settings import get_settings

console = Console()


def _apps() -> list[AppProcess]:
    settings = get_settings()
    return [AppProcess(spec, settings) for spec in app_specs(settings)]


def up() -> None:
    """Start Kafka, PostgreSQL and renkou's services in the background; return once all of them answer."""
    infra_cmd.up()
    for app in _apps():
        try:
            started = app.start()
        except InfraError as exc:
            fail(str(exc))
        state = "started" if started else "already running:"
        console.print(f"[green]✓[/green] {state} {app.spec.name} (http://127.0.0.1:{app.spec.port}/healthz)")


def down() -> None:
    """Stop every part of the stack that this checkout started, services first."""
    for app in reversed(_apps()):
        try:
            if app.stop():
                console.print(f"[green]✓[/green] stopped {app.spec.name}")
        except InfraError as exc:
            fail(str(exc))
    infra_cmd.down()


def run() -> None:
    """The main job: start everything, show where it answers, stay up until Ctrl-C, then stop cleanly."""
    up()
    infra_cmd.status()
    console.print(
        "\n[bold]renkou is up.[/bold] Publish events to the department topics and look a resident up with "
        "`.venv/bin/renkou resident show <citizen id>`. Press Ctrl-C to stop everything."
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("\nstopping...")
    down()
