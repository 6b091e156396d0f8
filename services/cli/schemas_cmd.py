"""``renkou schemas export|check``: publish the events' JSON Schemas and keep published versions unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from events.schemas import SCHEMA_DIR, check_schemas, export_schemas

app = typer.Typer(
    help="JSON Schemas of the events: export the published files, check the code still matches them.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

DirOption = Annotated[
    Path,
    typer.Option("--dir", help="Directory of the published schemas.", file_okay=False, dir_okay=True),
]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command("export")
def export(
    directory: DirOption = SCHEMA_DIR,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a differing file (only for a version never released).")
    ] = False,
) -> None:
    """Write events/schemas/<event_type>/v<N>.json for the latest version of every event type."""
    result = export_schemas(directory, force=force)
    for path in result.written:
        _out.print(f"[green]wrote[/green] {escape(_shown(path))}")
    for problem in result.refused:
        _err.print(f"[red]refused[/red] {escape(problem)}")
    _out.print(
        f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.refused)} refused "
        f"in {escape(_shown(directory))}"
    )
    if result.refused:
        raise typer.Exit(code=1)


@app.command("check")
def check(directory: DirOption = SCHEMA_DIR) -> None:
    """Fail if a published schema changed or an older published version can no longer be read."""
    problems = check_schemas(directory)
    if problems:
        for problem in problems:
            _err.print(escape(problem), soft_wrap=True)
        _err.print(f"[red]{len(problems)} schema problem{'s' if len(problems) != 1 else ''}[/red]")
        raise typer.Exit(code=1)
    count = sum(1 for _ in directory.rglob("v*.json"))
    where = escape(_shown(directory))
    _out.print(f"[green]schemas OK[/green]: {count} published schema files match the code in {where}")
