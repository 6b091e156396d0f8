"""``renkou up|down|run``: the whole local backbone, in the background or in the foreground.

``run`` is the main job (``make run``): start everything, create the demo credentials, feed the backbone a
simulated city through the gateway with a live display, print queries that work as printed, say ``ready`` and
stay up until Ctrl-C (or SIGTERM), which stops everything again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import time
from dataclasses import dataclass
from types import FrameType
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console

from projections.resident import tables
from projections.resident.tables import named
from services.cli import infra_cmd
from services.cli.common import database, fail
from services.cli.demo_credentials import demo_tokens_path, ensure_demo_credentials, query_api_url
from services.cli.ingest_cmd import simulate_city
from services.cli.ingest_progress import Report
from services.infra.apps import AppProcess, app_specs
from services.infra.process import InfraError
from services.settings import Settings, get_settings

console = Console(highlight=False)
STALL_S = 180.0  # how long the projection may stand still, lag unchanged, before `run` stops waiting for it


def _apps() -> list[AppProcess]:
    # The settings name every broker and both PostgreSQL servers of a stack that has them (get_settings), so the
    # services find the rest when one is down and follow a failover.
    settings = get_settings()
    return [AppProcess(spec, settings) for spec in app_specs(settings)]


def up(kafka_brokers: infra_cmd.BrokersOption = None, pg_standby: infra_cmd.StandbyOption = False) -> None:
    """Start Kafka, PostgreSQL and renkou's services in the background; return once all of them answer."""
    infra_cmd.up(kafka_brokers, pg_standby)
    for app in _apps():
        try:
            started = app.start()
        except InfraError as exc:
            fail(str(exc))
        state = "started" if started else "already running:"
        console.print(f"[green]✓[/green] {state} {app.spec.name} ({app.settings.local_url(app.spec.port)}/readyz)")


def down() -> None:
    """Stop every part of the stack that this checkout started, services first."""
    for app in reversed(_apps()):
        try:
            if app.stop():
                console.print(f"[green]✓[/green] stopped {app.spec.name}")
        except InfraError as exc:
            fail(str(exc))
    infra_cmd.down()


@dataclass
class _Example:
    citizen_id: str
    household_id: str | None
    region_code: str | None  # a 4-digit city prefix


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(
    residents: Annotated[int, typer.Option("--residents", min=0, help="People in the simulated city.")] = 10_000,
    years: Annotated[int, typer.Option("--years", min=1, max=100, help="Years of simulated history.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="The city's seed (same seed, same city).")] = 0,
    direct: Annotated[bool, typer.Option("--direct", help="Feed Kafka directly instead of the gateway.")] = False,
) -> None:
    """The main job: start everything, feed it a simulated city, print queries, stay up until Ctrl-C."""
    settings = get_settings()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # SIGTERM stops the run like Ctrl-C does, through the same clean shutdown below; SIGINT is set explicitly
    # because a process started in the background by a shell inherits it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    # The demo's citizens log in to the console through its own identity provider page (loopback only).
    os.environ.setdefault("RENKOU_CONSOLE_DEMO_IDP", "1")
    try:
        up()
        credentials, report, example = asyncio.run(_feed(settings, residents, years, seed, direct))
        _print_queries(settings, credentials, report, example)
        print("renkou is ready. Press Ctrl-C to stop everything.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("\nstopping everything renkou started ...")
        down()


async def _feed(
    settings: Settings, residents: int, years: int, seed: int, direct: bool
) -> tuple[dict[str, Any], Report, _Example | None]:
    async with database() as conn:
        credentials = await ensure_demo_credentials(conn, settings)
    console.print(
        f"[green]✓[/green] demo credentials in {demo_tokens_path(settings)} (`.venv/bin/renkou demo-tokens` prints "
        "them)"
    )
    via = "straight to Kafka" if direct else "through the gateway"
    console.print(
        f"simulating a city of {residents:,} residents over {years} years (seed {seed}), published {via}; "
        "the projector applies it as it arrives:"
    )
    report = await simulate_city(
        settings,
        residents=residents,
        years=years,
        seed=seed,
        direct=direct,
        tokens=credentials["departments"],
        wait_projected_s=STALL_S,
        stream=console,
    )
    rate = report.events / report.seconds if report.seconds else 0.0
    console.print(
        f"[green]✓[/green] published {report.events:,} events in {report.seconds:.1f} s ({rate:,.0f} events/s): "
        f"{report.accepted:,} new, {report.duplicates:,} repeats, {report.rejected:,} rejected"
    )
    if report.caught_up:
        console.print(
            f"[green]✓[/green] projected {report.last.projected:,} events, lag 0, "
            f"dead letters {report.last.dead_letters:,}"
        )
    else:
        console.print(
            f"[yellow]![/yellow] the projector is {report.last.lag:,} events behind and has not moved for "
            f"{STALL_S:.0f} s; see {settings.state_dir / 'apps' / 'projector.log'}"
        )
    for line in report.first_rejections:
        console.print(f"  rejected: {line}")
    async with database() as conn:
        example = await _example(conn)
    return credentials, report, example


async def _example(conn: asyncpg.Connection) -> _Example | None:
    """A resident worth looking at: a pupil with a name (born in the simulated window) in a household of
    several people; and the city (4-digit region prefix) where most people are registered, for statistics."""
    members, sections = named(tables.household_members), named(tables.sections)
    row = await conn.fetchrow(
        f"WITH sizes AS (SELECT household_id, count(*) AS n FROM {members} GROUP BY 1) "
        f"SELECT e.citizen_id, h.household_id FROM {sections} e "
        f"LEFT JOIN {sections} p ON p.citizen_id = e.citizen_id AND p.department = 'public_security' "
        f"LEFT JOIN {members} h ON h.citizen_id = e.citizen_id "
        "LEFT JOIN sizes ON sizes.household_id = h.household_id "
        "WHERE e.department = 'education' "
        "ORDER BY (p.state -> 'identity' ->> 'name') IS NULL, coalesce(sizes.n, 0) < 3, e.citizen_id LIMIT 1"
    ) or await conn.fetchrow(
        f"SELECT s.citizen_id, h.household_id FROM {sections} s "
        f"LEFT JOIN {members} h USING (citizen_id) ORDER BY s.citizen_id LIMIT 1"
    )
    if row is None:
        return None
    city = await conn.fetchval(
        f"SELECT left(region_code, 4) FROM {members} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    return _Example(row["citizen_id"], row["household_id"], city)


def _print_queries(settings: Settings, credentials: dict[str, Any], report: Report, example: _Example | None) -> None:
    base = query_api_url(settings)
    token = credentials["consumer"]["token"]

    def curl(purpose: str, path: str) -> str:
        return f'curl -s -H "Authorization: Bearer {token}" -H "X-Purpose: {purpose}" {shlex.quote(base + path)}'

    lines: list[str] = []
    apps = {spec.name for spec in app_specs(settings)}
    if example is not None and "query-api" in apps:
        lines.append(curl("school_enrolment", f"/v1/residents/{example.citizen_id}"))
        if example.household_id:
            lines.append(curl("school_enrolment", f"/v1/households/{example.household_id}"))
        if example.region_code:
            lines.append(curl("statistics", f"/v1/statistics/population?region_code={example.region_code}"))
        lines.append(curl("audit", f"/v1/residents/{example.citizen_id}/access-log"))
    citizen = ""
    if example is not None and "query-api" in apps:
        # The citizen logs in with the local identity provider (a city's own in production) and sees who read them.
        login = f"$(.venv/bin/renkou citizens token {example.citizen_id})"
        citizen = f'curl -s -H "Authorization: Bearer {login}" {shlex.quote(base + "/v1/me/access-log")}'
    if example is not None:
        lines.append(f".venv/bin/renkou resident show {example.citizen_id}")
    lines.extend([".venv/bin/renkou status", ".venv/bin/renkou demo-tokens"])
    console.print("\n[bold]Try it[/bold] (copy and paste; the demo consumer is allowed these purposes):")
    for line in lines:
        # Plain print: a command must never be wrapped by the terminal width.
        print(f"  {line}", flush=True)
    if citizen:
        console.print(f"\n[bold]As the citizen[/bold] {example.citizen_id if example else ''} (who read my data?):")
        print(f"  {citizen}", flush=True)
    web = credentials.get("console")
    if web and "console" in apps:
        console.print(
            f"\n[bold]In a browser[/bold]: the console at {web['url']}/ , and a citizen's own page at {web['url']}/me "
            "(the demo identity provider asks only for the citizen ID):"
        )
        for name, account in web["accounts"].items():
            print(f"  {account['role']:<9} {name} {account['password']}", flush=True)
    gateway = credentials["gateway"]
    department_token = credentials["departments"]["health"]
    console.print("\n[bold]As a department[/bold] (health records a vaccination; the same event again answers 200):")
    print(f"  {_department_curl(gateway, department_token, example)}", flush=True)
    console.print(
        f"Departments publish to the gateway at {gateway} (`POST /v1/events`, `/v1/events:batch`; "
        f"OpenAPI at {gateway}/docs) with the tokens `renkou demo-tokens` prints, or straight onto Kafka with the "
        "department's own SCRAM principal (printed there too; each may write only its own topic)."
    )


def _department_curl(gateway: str, token: str, example: _Example | None) -> str:
    """A ``curl`` that publishes one valid health event for the example resident (fixed event ID: idempotent)."""
    import json
    import uuid

    from events.examples import example_event

    event = example_event("vaccination.recorded")
    if example is not None:
        event["citizen_id"] = example.citizen_id
        event["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"renkou-demo/{example.citizen_id}"))
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return (
        f'curl -s -X POST -H "Authorization: Bearer {token}" -H "Content-Type: application/json" '
        f"--data {shlex.quote(body)} {shlex.quote(gateway + '/v1/events')}"
    )
