"""``renkou departments token``, ``simulate``, ``demo-tokens``: getting events in, and the demo's credentials.

``simulate`` publishes a simulated city through the gateway (batches of up to 1000, one department token per
department, in order per citizen) or, with ``--direct``, straight to Kafka; a live display shows what was
published, what the projector has applied, the lag between them and the dead letters. ``renkou run`` uses the
same pieces (``ensure_demo_credentials``, ``simulate_city``) for the main job.

An outage of a few minutes is ridden out (``services.retry``: the gateway's 503s and lost connections, Kafka and
PostgreSQL unavailable, up to ``--retry-deadline`` seconds each time); a refusal (4xx) ends the run at once. The
department tokens ``simulate`` creates are revoked when it ends, however it ends: done, failed or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from events import DEAD_LETTER_TOPIC, DEPARTMENTS, consumer_view_topic, topic_for
from services.cli.common import database, fail
from services.db import roles as db_roles
from services.db.dsn import asyncpg_dsn
from services.gateway.auth import issue_token
from services.grants import add_grant, find_grant
from services.kafka_auth import (
    DEMO_CONSUMER,
    MECHANISM,
    OPERATOR,
    client_options,
    credentials_for,
    demo_department_principal,
    stored_credentials,
    write_private,
)
from services.kafka_metadata import partitions_of
from services.outages import describe, is_outage
from services.publisher import Publisher, PublishError
from services.publisher.gateway_client import BatchRefused, GatewayClient, Tally
from services.retry import DEFAULT_DEADLINE_S, GaveUpError, RetryPolicy
from services.settings import Settings, get_settings
from services.simulator import simulate_bytes
from services.tokens import token_hash

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# What the demo consumer may read, purpose by purpose (CONTRACT §11): a school bureau enrolling pupils, its
# statistics office, its auditors. Its view topic carries the enrolment purpose's sections.
DEMO_GRANT: dict[str, tuple[str, ...]] = {
    "school_enrolment": ("identity", "hukou", "residence", "education", "family", "flags", "meta", "eligibility"),
    "statistics": ("statistics",),
    "audit": ("identity", "events", "access_log", "meta"),
}
DEMO_VIEW_TOPIC = "school_enrolment"
EVENTS_PER_RESIDENT = 51  # what the simulator yields on average over 20 years; only for the progress estimate
DIRECT_CHUNK = 5000


def demo_tokens_path(settings: Settings) -> Path:
    """Where ``make run`` keeps the demo's plaintext tokens (mode 600): only their hashes are in the database."""
    return settings.state_dir / "demo-tokens.json"


def gateway_url(settings: Settings) -> str:
    return settings.local_url(settings.gateway_port)


def query_api_url(settings: Settings) -> str:
    return settings.local_url(settings.query_api_port)


# --- demo credentials ---------------------------------------------------------------------------------------------


async def ensure_demo_credentials(conn: asyncpg.Connection, settings: Settings) -> dict[str, Any]:
    """The demo consumer grant and one gateway token per department: reused while still valid, else made anew;
    written to ``demo-tokens.json`` (mode 600) and returned."""
    path = demo_tokens_path(settings)
    known: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(path.read_text())
    consumer = await _demo_consumer(conn, known.get("consumer", {}).get("token"))
    departments: dict[str, str] = {}
    for department in DEPARTMENTS:
        token = known.get("departments", {}).get(department)
        if not (isinstance(token, str) and await _department_token_valid(conn, token, department)):
            token = await issue_token(conn, department, "demo (make run)")
        departments[department] = token
    credentials = {
        "consumer": consumer,
        "departments": departments,
        "query_api": query_api_url(settings),
        "gateway": gateway_url(settings),
        "kafka": _demo_kafka_credentials(settings),
        "console": await _demo_console(settings, known.get("console")),
    }
    write_private(path, json.dumps(credentials, indent=2) + "\n")
    return credentials


DEMO_ACCOUNTS = (("demo-operator", "operator"), ("demo-auditor", "auditor"))


async def _demo_console(settings: Settings, known: object) -> dict[str, Any]:
    """The console's address and the demo's operator and auditor accounts: kept while their stored passwords still
    log in, else made anew (as the owner role, like `renkou operators add`)."""
    from services.console.accounts import add_account, authenticate, remove_account
    from services.operations.base import database as database_as

    stored = known.get("accounts", {}) if isinstance(known, dict) else {}
    accounts: dict[str, dict[str, str]] = {}
    async with database_as(settings, application_name="renkou-demo", role=db_roles.OWNER) as owner:
        for name, role in DEMO_ACCOUNTS:
            password = (stored.get(name) or {}).get("password") if isinstance(stored, dict) else None
            if not (isinstance(password, str) and await authenticate(owner, name, password)):
                if await owner.fetchval("SELECT 1 FROM console_accounts WHERE name = $1", name):
                    await remove_account(owner, name)
                password = await add_account(owner, name, role)
            accounts[name] = {"role": role, "password": password}
    return {"url": settings.local_url(settings.console_port), "accounts": accounts}


def _demo_kafka_credentials(settings: Settings) -> dict[str, Any]:
    """The demo departments' Kafka principals (SCRAM-SHA-512) that `renkou up` created, for the publisher SDK, and
    the demo consumer's, which reads its own view topic."""
    principals = {}
    for department in DEPARTMENTS:
        stored = stored_credentials(settings.state_dir, demo_department_principal(department))
        if stored is not None:
            principals[department] = {"username": stored.username, "password": stored.password}
    credentials: dict[str, Any] = {
        "bootstrap": settings.kafka_bootstrap,
        "mechanism": MECHANISM,
        "departments": principals,
    }
    consumer = stored_credentials(settings.state_dir, DEMO_CONSUMER)
    if consumer is not None:
        credentials["consumer"] = {
            "username": consumer.username,
            "password": consumer.password,
            "topic": settings.topic_namespace + consumer_view_topic(DEMO_CONSUMER),
        }
    return credentials


async def _demo_consumer(conn: asyncpg.Connection, token: object) -> dict[str, Any]:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    if isinstance(token, str):
        grant = await find_grant(conn, token)
        if grant is not None and grant.name == DEMO_CONSUMER and grant.status(datetime.now(UTC)) == "active":
            return _consumer_entry(token, grant.expires_at)
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM consumer_grants WHERE name = $1", DEMO_CONSUMER):
            # The plaintext was lost (state folder wiped) or the grant lapsed: reissue the demo's own grant rather
            # than invent a new consumer name each time (names are never reused for another consumer).
            from services.grants import new_token

            token = new_token()
            sections = sorted({s for chosen in DEMO_GRANT.values() for s in chosen})
            await conn.execute(
                "UPDATE consumer_grants SET token_hash = $2, sections = $3::text[], purposes = $4::text[], "
                "purpose_sections = $5::jsonb, view_topic = $6, expires_at = $7, revoked_at = NULL WHERE name = $1",
                DEMO_CONSUMER,
                token_hash(token),
                sections,
                list(DEMO_GRANT),
                json.dumps(DEMO_GRANT),
                DEMO_VIEW_TOPIC,
                expires,
            )
        else:
            token = await add_grant(
                conn, DEMO_CONSUMER, expires_at=expires, by_purpose=DEMO_GRANT, view_topic=DEMO_VIEW_TOPIC
            )
    return _consumer_entry(token, expires)


def _consumer_entry(token: str, expires: datetime | None) -> dict[str, Any]:
    return {
        "name": DEMO_CONSUMER,
        "token": token,
        "purposes": {purpose: list(sections) for purpose, sections in DEMO_GRANT.items()},
        "expires_at": expires.isoformat() if expires else None,
    }


async def _department_token_valid(conn: asyncpg.Connection, token: str, department: str) -> bool:
    found = await conn.fetchval(
        "SELECT department FROM department_tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token)
    )
    return bool(found == department)


# --- the live display ---------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """Where the backbone stands: records on the department topics, applied by the projector, dead letters."""

    on_kafka: int = 0
    projected: int = 0
    dead_letters: int = 0

    @property
    def lag(self) -> int:
        return max(0, self.on_kafka - self.projected)


class Monitor:
    """Samples log ends (Kafka) and the projector's checkpoints (PostgreSQL) for the progress display."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = [settings.topic_namespace + topic_for(d) for d in DEPARTMENTS]
        self.dead_letter_topic = settings.topic_namespace + DEAD_LETTER_TOPIC
        self._consumer: Any = None
        self._conn: asyncpg.Connection | None = None
        self._partitions: list[Any] = []

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Monitor]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(**client_options(self.settings, OPERATOR), enable_auto_commit=False)
        await consumer.start()
        url = asyncpg_dsn(db_roles.url_for(self.settings, db_roles.OPERATOR))
        try:
            self._conn = await asyncpg.connect(url, timeout=10)
            self._partitions = [
                tp for t in [*self.topics, self.dead_letter_topic] for tp in await partitions_of(consumer, t)
            ]
            self._consumer = consumer
            yield self
        finally:
            if self._conn is not None:
                await self._conn.close()
            await consumer.stop()

    async def sample(self) -> Sample:
        """One sample; raises while Kafka or PostgreSQL is unavailable (the next sample reconnects)."""
        if self._conn is None or self._conn.is_closed():
            # The connection did not survive a restart of PostgreSQL: a new one.
            self._conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url.get_secret_value()), timeout=10)
        ends = await self._consumer.end_offsets(self._partitions)
        try:
            rows = await self._conn.fetch(
                "SELECT topic, next_offset FROM projection.checkpoints WHERE projection = 'resident_view' "
                "AND topic = ANY($1::text[])",
                self.topics,
                timeout=10,
            )
        except Exception as exc:
            if is_outage(exc):
                broken, self._conn = self._conn, None
                broken.terminate()
            raise
        return Sample(
            on_kafka=sum(off for tp, off in ends.items() if tp.topic != self.dead_letter_topic),
            projected=sum(int(r["next_offset"]) for r in rows),
            dead_letters=sum(off for tp, off in ends.items() if tp.topic == self.dead_letter_topic),
        )


@dataclass
class Report:
    """What one simulation run did."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    caught_up: bool = False
    last: Sample = field(default_factory=Sample)
    first_rejections: list[str] = field(default_factory=list)


class Display:
    """Two bars (published, projected) and a status line; Rich redraws them from its own thread."""

    waiting: str = ""

    def __init__(self, estimate: int, stream: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:>9}"),
            BarColumn(bar_width=36),
            TextColumn("{task.completed:>9,.0f} / {task.fields[total_text]:<10}"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=stream,
            refresh_per_second=4,
        )
        self.published: TaskID = self.progress.add_task(
            "published", total=estimate, total_text=f"≈{estimate:,}", note=""
        )
        self.projected: TaskID = self.progress.add_task("projected", total=1, total_text="0", note="")
        self.started = time.monotonic()

    def publishing(self, sent: int) -> None:
        rate = sent / max(1e-6, time.monotonic() - self.started)
        self.waiting = ""
        self.progress.update(self.published, completed=sent, note=f"{rate:,.0f} events/s")

    def retrying(self, error: BaseException, wait_s: float) -> None:
        """An outage is being ridden out: say so instead of the rate until the next batch goes through."""
        self.waiting = f"retrying in {wait_s:.0f} s: {describe(error)[:60]}"
        self.progress.update(self.published, note=self.waiting)

    def published_all(self, sent: int) -> None:
        self.progress.update(self.published, completed=sent, total=max(sent, 1), total_text=f"{sent:,}")

    def backbone(self, sample: Sample) -> None:
        self.progress.update(
            self.projected,
            completed=sample.projected,
            total=max(sample.on_kafka, 1),
            total_text=f"{sample.on_kafka:,}",
            note=f"lag {sample.lag:,} · dead letters {sample.dead_letters:,}",
        )

    @contextlib.contextmanager
    def shown(self) -> Iterator[Display]:
        with self.progress:
            yield self


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
            watcher = asyncio.create_task(_watch(monitor, display, report, publishing))
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


async def _watch(monitor: Monitor, display: Display, report: Report, running: asyncio.Event) -> None:
    """Sample every 0.5 s while ``running`` is set; return (between samples) once it is cleared."""
    while running.is_set():
        with contextlib.suppress(Exception):  # a missed sample only delays the display
            report.last = await monitor.sample()
            display.backbone(report.last)
        for _ in range(5):
            if not running.is_set():
                break
            await asyncio.sleep(0.1)


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
        await conn.execute(
            "UPDATE department_tokens SET revoked_at = now() WHERE label = $1 AND revoked_at IS NULL", label
        )

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
                f"({describe(exc)}); revoke them with: UPDATE department_tokens SET revoked_at = now() "
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


def demo_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="The credentials file as JSON.")] = False,
) -> None:
    """Print the demo credentials `make run` created: the query API consumer token, the gateway tokens."""
    settings = get_settings()
    path = demo_tokens_path(settings)
    try:
        credentials = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"no demo credentials yet ({path} does not exist): `make run` creates them", 4)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}", 4)
    if as_json:
        print(json.dumps(credentials, indent=2))
        return
    consumer = credentials["consumer"]
    console.print(
        f"[bold]query API[/bold] {credentials['query_api']} — consumer [bold]{consumer['name']}[/bold] until "
        f"{consumer['expires_at']}, purpose → sections:"
    )
    for purpose, sections in consumer["purposes"].items():
        console.print(f"  {purpose}: {', '.join(sections)}")
    print(f"  {consumer['token']}")
    console.print(f"[bold]gateway[/bold] {credentials['gateway']} — one token per department:")
    for department, token in credentials["departments"].items():
        # Plain print: a token must never be wrapped or folded by the terminal width.
        print(f"  {department:<16} {token}")
    web = credentials.get("console")
    if web:
        console.print(f"[bold]console[/bold] {web['url']}/ — accounts (citizens log in at {web['url']}/me):")
        for name, account in web["accounts"].items():
            print(f"  {account['role']:<16} {name} {account['password']}")
    kafka = credentials.get("kafka") or {"departments": {}}
    if kafka["departments"]:
        console.print(
            f"[bold]Kafka[/bold] {kafka['bootstrap']} ({kafka['mechanism']}) — one principal per department, "
            "each may write only its own topic:"
        )
        for department, principal in kafka["departments"].items():
            print(f"  {department:<16} {principal['username']} {principal['password']}")
    if kafka.get("consumer"):
        reader = kafka["consumer"]
        console.print(
            f"[bold]Kafka[/bold] the consumer's own view topic {reader['topic']} ({DEMO_VIEW_TOPIC} sections):"
        )
        print(f"  {'consumer':<16} {reader['username']} {reader['password']}")
    console.print(f"(from {path}; only the tokens' hashes are in the database, and Kafka keeps salted keys)")


def register(app: typer.Typer) -> None:
    """Add ``departments token``, ``simulate`` and ``demo-tokens`` to the root ``renkou`` app."""
    departments = typer.Typer(help="Department credentials for the gateway.", no_args_is_help=True)
    departments.command("token")(department_token)
    app.add_typer(departments, name="departments")
    app.command("simulate")(simulate)
    app.command("demo-tokens")(demo_tokens)
