"""``renkou departments token``, ``simulate``, ``demo-tokens``: getting events in, and the demo's credentials.

``simulate`` publishes a simulated city through the gateway (batches of up to 1000, one department token per
department, in order per citizen) or, with ``--direct``, straight to Kafka; a live display shows what was
published, what the projector has applied, the lag between them and the dead letters (``ingest_progress``).
``renkou run`` uses ``simulate_city`` for the main job; the demo's credentials are ``demo_credentials``'.

An outage of a few minutes is ridden out (``services.retry``: the gateway's 503s and lost connections, Kafka and
PostgreSQL unavailable, up to ``--retry-deadline`` seconds each time); a refusal (4xx) ends the run at once. The
department tokens ``simulate`` creates are revoked when it ends, however it ends: done, failed or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Any, Final, TypeVar

import asyncpg
import httpx
import typer
from rich.console import Console

from events import DEPARTMENTS, topic_for
from projections.resident.tables import named
from services.cli.common import database, fail
from services.cli.demo_credentials import demo_tokens, gateway_url
from services.cli.ingest_progress import Display, Monitor, Report, Sample, watch
from services.db import service_tables
from services.db.dsn import asyncpg_dsn
from services.gateway.auth import issue_token
from services.kafka.auth import OPERATOR, credentials_for
from services.outages import describe
from services.publisher import Publisher, PublishError
from services.publisher.gateway_client import BatchRefused, GatewayClient, Tally
from services.retry import DEFAULT_DEADLINE_S, GaveUpError, RetryPolicy
from services.settings import Settings, get_settings
from services.simulator import simulate_bytes

_TOKENS: Final = named(service_tables.department_tokens)

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EVENTS_PER_RESIDENT = 51  # what the simulator yields on average over 20 years; only for the progress estimate
DIRECT_CHUNK = 5000


async def simulate_city(
    settings: Settings,
    *,
    residents: int,
    years: int,
    seed: int,
    direct: bool,
    tokens: dict[str, str] | None,
    lanes: int = 4,
    wait_projected_s: float | None = None,
    stream: Console = err,
    retry: RetryPolicy | None = None,
) -> Report:
    """Publish the simulated city and show progress; with ``wait_projected_s``, also wait (at most that long
    without progress) until the projector applied everything published. ``retry`` (``RetryPolicy()`` by default)
    is how long each step rides out an outage."""
    retry = retry or RetryPolicy()
    records = simulate_bytes(residents, years=years, seed=seed)
    report = Report()
    display = Display(residents * EVENTS_PER_RESIDENT, stream)
    monitor = Monitor(settings)
    async with monitor.open():
        with display.shown():
            # The monitor's one database connection takes one query at a time: the watcher samples while
            # publishing, and is let finish its sample (not cancelled inside it) before anything else samples.
            publishing = asyncio.Event()
            publishing.set()
            watcher = asyncio.create_task(watch(monitor, display, report, publishing))
            started = time.monotonic()
            try:
                if direct:
                    await _publish_direct(settings, records, display, report, retry)
                else:
                    await _publish_via_gateway(settings, records, tokens or {}, lanes, display, report, retry)
                report.seconds = time.monotonic() - started
                display.published_all(report.events)
            finally:
                publishing.clear()
                await watcher
            sample = partial_sample(monitor, retry)
            if wait_projected_s is not None:
                report.caught_up = await _wait_projected(sample, display, report, wait_projected_s)
            report.last = await sample()
            display.backbone(report.last)
    return report


def partial_sample(monitor: Monitor, retry: RetryPolicy) -> Callable[[], Awaitable[Sample]]:
    """``monitor.sample`` riding out an outage of Kafka or PostgreSQL under ``retry``."""

    async def sample() -> Sample:
        result: Sample = await retry.retrying("sampling the projector's progress")(monitor.sample)
        return result

    return sample


async def _wait_projected(
    take_sample: Callable[[], Awaitable[Sample]], display: Display, report: Report, stall_s: float
) -> bool:
    last_progress, last_value = time.monotonic(), -1
    while True:
        sample = await take_sample()
        display.backbone(sample)
        if sample.lag == 0:
            return True
        if sample.projected != last_value:
            last_progress, last_value = time.monotonic(), sample.projected
        elif time.monotonic() - last_progress > stall_s:
            return False
        await asyncio.sleep(0.3)


async def _publish_via_gateway(
    settings: Settings,
    records: Iterator[tuple[str, bytes, bytes]],
    tokens: dict[str, str],
    lanes: int,
    display: Display,
    report: Report,
    retry: RetryPolicy,
) -> None:
    def on_batch(tally: Tally) -> None:
        report.events, report.accepted, report.duplicates = tally.sent, tally.accepted, tally.duplicates
        report.rejected = tally.rejected
        report.first_rejections = tally.first_rejections
        display.publishing(tally.sent)

    async with GatewayClient(gateway_url(settings), tokens, retry=retry, on_retry=display.retrying) as client:
        await client.publish_stream(records, lanes=lanes, on_batch=on_batch)


async def _publish_direct(
    settings: Settings,
    records: Iterator[tuple[str, bytes, bytes]],
    display: Display,
    report: Report,
    retry: RetryPolicy,
) -> None:
    namespace = settings.topic_namespace
    topics: dict[str, str] = {d: namespace + topic_for(d) for d in DEPARTMENTS}
    # Straight onto the four department topics: an operator's principal (the gateway path uses department tokens).
    # Not ``async with``: the producer connects on the first chunk, inside the retries, so that a Kafka that is
    # down at the start is waited for like one that goes down later.
    publisher = Publisher(
        settings.kafka_bootstrap,
        namespace=namespace,
        client_id="renkou-simulate",
        retry=retry,
        credentials=credentials_for(settings, OPERATOR),
    )
    try:
        chunk: list[tuple[str, bytes, bytes]] = []
        for department, key, value in records:
            chunk.append((topics[department], key, value))
            if len(chunk) >= DIRECT_CHUNK:
                await _send_chunk(publisher, chunk, display, report)
                chunk = []
        await _send_chunk(publisher, chunk, display, report)
    finally:
        await publisher.stop()


async def _send_chunk(
    publisher: Publisher, chunk: list[tuple[str, bytes, bytes]], display: Display, report: Report
) -> None:
    if not chunk:
        return
    await publisher.deliver(chunk)  # rides out an outage; PublishError once the retry policy gives up
    report.events += len(chunk)
    report.accepted += len(chunk)
    display.publishing(report.events)


# --- commands -----------------------------------------------------------------------------------------------------


def department_token(
    department: Annotated[str, typer.Argument(help=f"One of: {', '.join(DEPARTMENTS)}.")],
    label: Annotated[
        str | None, typer.Option("--label", help="A note stored with the token (e.g. the system).")
    ] = None,
) -> None:
    """Print a new gateway token for DEPARTMENT (shown once; only its hash is stored)."""
    if department not in DEPARTMENTS:
        fail(f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}", 2)

    async def issue() -> str:
        async with database() as conn:
            return await issue_token(conn, department, label)

    token = asyncio.run(issue())
    err.print(f"a new gateway token for {department}; it is shown only now, store it:")
    print(token)


def simulate(
    residents: Annotated[int, typer.Option("--residents", min=0, help="People to simulate.")],
    years: Annotated[int, typer.Option("--years", min=1, max=100, help="Years of history.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same city (and same event IDs).")] = 0,
    direct: Annotated[bool, typer.Option("--direct", help="Straight to Kafka instead of through the gateway.")] = False,
    lanes: Annotated[int, typer.Option("--lanes", min=1, max=16, help="Parallel batches to the gateway.")] = 4,
    retry_deadline: Annotated[
        float,
        typer.Option(
            "--retry-deadline",
            min=0,
            help="Seconds to ride out an outage (the gateway answering 503, Kafka or PostgreSQL down) before "
            "giving up.",
        ),
    ] = DEFAULT_DEADLINE_S,
) -> None:
    """Publish a simulated city (deterministic) through the gateway, with a live progress display."""
    settings = get_settings()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    retry = RetryPolicy(deadline_s=retry_deadline)

    async def go() -> Report:
        if direct:
            return await simulate_city(
                settings, residents=residents, years=years, seed=seed, direct=True, tokens=None, retry=retry
            )
        await _require_gateway(settings)
        async with simulation_tokens(settings, retry) as tokens:
            return await simulate_city(
                settings,
                residents=residents,
                years=years,
                seed=seed,
                direct=False,
                tokens=tokens,
                lanes=lanes,
                retry=retry,
            )

    report = _run_simulation(go())
    _print_summary(report, direct)


T = TypeVar("T")
CLEANUP_DEADLINE_S = 60.0
"""How long the revocation of a run's tokens waits for PostgreSQL at most (the run is over; a user waits)."""


@contextlib.asynccontextmanager
async def simulation_tokens(settings: Settings, retry: RetryPolicy) -> AsyncIterator[dict[str, str]]:
    """A gateway token per department for one run, revoked when the block ends, however it ends (done, an error,
    Ctrl-C). Issuing and revoking ride out an outage of PostgreSQL; the tokens carry a label of their own run, so
    that a revocation also catches tokens of an issuing attempt whose commit was never confirmed."""
    label = f"renkou simulate {uuid.uuid4().hex[:12]}"

    async def issue(conn: asyncpg.Connection) -> dict[str, str]:
        async with conn.transaction():
            return {d: await issue_token(conn, d, label) for d in DEPARTMENTS}

    async def revoke(conn: asyncpg.Connection) -> None:
        await conn.execute(f"UPDATE {_TOKENS} SET revoked_at = now() WHERE label = $1 AND revoked_at IS NULL", label)

    try:
        tokens = await _with_database(settings, retry, "issuing the run's department tokens", issue)
        yield tokens
    finally:
        cleanup = dataclasses.replace(retry, deadline_s=min(retry.deadline_s or CLEANUP_DEADLINE_S, CLEANUP_DEADLINE_S))
        try:
            await _with_database(settings, cleanup, "revoking the run's department tokens", revoke)
        except Exception as exc:  # the run's own outcome (or Ctrl-C) is what the user must see; this is a warning
            err.print(
                f"[yellow]warning:[/yellow] the run's department tokens (label {label!r}) could not be revoked "
                f"({describe(exc)}); revoke them with: UPDATE {_TOKENS} SET revoked_at = now() "
                f"WHERE label = '{label}'"
            )


async def _connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()), timeout=10)


async def _with_database(
    settings: Settings, retry: RetryPolicy, what: str, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """``work`` on a connection of its own, connecting again and repeating it while PostgreSQL is unavailable."""

    async def attempt() -> T:
        conn = await _connect(settings)
        try:
            return await work(conn)
        finally:
            with contextlib.suppress(Exception):  # a connection that broke is dropped either way
                await conn.close(timeout=5)

    result: T = await retry.retrying(what)(attempt)
    return result


def _run_simulation(coro: Any) -> Report:
    try:
        report: Report = asyncio.run(coro)
    except BatchRefused as exc:
        fail(str(exc), 1)
    except GaveUpError as exc:
        fail(f"{exc}; is the stack up? (make up)", 3)
    except (PublishError, httpx.TransportError) as exc:
        fail(f"publishing failed: {exc}; is the stack up? (make up)", 3)
    except KeyboardInterrupt:
        fail("interrupted; what was acknowledged stays published — running the same command again is safe", 130)
    return report


async def _require_gateway(settings: Settings) -> None:
    url = gateway_url(settings)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            (await client.get(f"{url}/healthz")).raise_for_status()
    except httpx.HTTPError:
        fail(f"the gateway at {url} does not answer; is the stack up? (make up) — or publish with --direct", 3)


def _print_summary(report: Report, direct: bool) -> None:
    rate = report.events / report.seconds if report.seconds else 0.0
    via = "straight to Kafka" if direct else "through the gateway"
    console.print(
        f"published {report.events:,} events {via} in {report.seconds:.1f} s ({rate:,.0f} events/s): "
        f"{report.accepted:,} new, {report.duplicates:,} repeats, {report.rejected:,} rejected; "
        f"projected {report.last.projected:,}, lag {report.last.lag:,}, dead letters {report.last.dead_letters:,}"
    )
    for line in report.first_rejections:
        err.print(f"  rejected: {line}")


def register(app: typer.Typer) -> None:
    """Add ``departments token``, ``simulate`` and ``demo-tokens`` to the root ``renkou`` app."""
    departments = typer.Typer(help="Department credentials for the gateway.", no_args_is_help=True)
    departments.command("token")(department_token)
    app.add_typer(departments, name="departments")
    app.command("simulate")(simulate)
    app.command("demo-tokens")(demo_tokens)
