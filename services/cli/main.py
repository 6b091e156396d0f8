"""The ``renkou`` command line: one Typer app, one sub-app per concern.

Each sub-app lives in its own module beside this one; this module only assembles them, so importing it
connects to nothing.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="renkou",
    help="renkou (人口): the population-information backbone — operate, query, replay and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from services.cli import (
        audit_cmd,
        citizens_cmd,
        dlq_cmd,
        grants_cmd,
        infra_cmd,
        ingest_cmd,
        kafka_cmd,
        operators_cmd,
        ops_cmd,
        policy_cmd,
        resident_cmd,
        schemas_cmd,
        stack_cmd,
    )

    app.command("up")(stack_cmd.up)
    app.command("down")(stack_cmd.down)
    app.command("run")(stack_cmd.run)
    app.command("failover")(infra_cmd.failover)

    app.add_typer(infra_cmd.app, name="infra")
    app.add_typer(schemas_cmd.app, name="schemas")
    app.add_typer(resident_cmd.app, name="resident")
    # Each of these modules adds its own commands (sub-apps or top-level commands) to ``app``.
    for module in (
        grants_cmd,
        ops_cmd,
        audit_cmd,
        dlq_cmd,
        ingest_cmd,
        policy_cmd,
        kafka_cmd,
        citizens_cmd,
        operators_cmd,
    ):
        module.register(app)


_register()
