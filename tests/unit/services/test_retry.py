"""The one retry policy (``services.retry``) and what rides on it — the gateway client (httpx ``MockTransport`` as
the gateway), the publisher SDK (a Kafka that fails), the outbox relay (a database that refuses connections) and
the simulator's department tokens — without any server."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import errors as kafka
from rich.console import Console

from projections.resident.tables import named
from services.cli import ingest_cmd
from services.db import service_tables
from services.publisher import Outbox, OutboxRelay, Publisher, PublishError
from services.publisher.gateway_client import BatchRefused, GatewayClient
from services.publisher.producer import Record
from services.publisher.relay import __name__ as relay_module
from services.retry import (
    DAEMON_RETRY,
    GaveUpError,
    RetryPolicy,
    ServerUnavailableError,
    any_error,
    retry_after_seconds,
)
from services.settings import Settings

_TOKENS = named(service_tables.department_tokens)

FAST = RetryPolicy(deadline_s=10.0, initial_s=0.001, max_wait_s=0.01)
OK_RESULTS = {"results": [{"index": 0, "status": 202}], "accepted": 1, "duplicates": 0, "rejected": 0}


class Gateway:
    """A scripted gateway: each request gets the next answer (a status, or an exception to raise)."""

    def __init__(self, *script: int | Exception, then: int = 200, retry_after: str | None = None) -> None:
        self.script = list(script)
        self.then = then
        self.retry_after = retry_after
        self.requests: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(time.monotonic())
        answer = self.script.pop(0) if self.script else self.then
        if isinstance(answer, Exception):
            raise answer
        if answer in (200, 207):
            return httpx.Response(answer, content=orjson.dumps(OK_RESULTS))
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        body = {"error": {"code": "x", "message": f"answer {answer}", "details": []}}
        return httpx.Response(answer, content=orjson.dumps(body), headers=headers)


def _client(gateway: Gateway, policy: RetryPolicy = FAST, **kwargs: Any) -> GatewayClient:
    return GatewayClient(
        "http://gateway", {"education": "rk_d_x"}, retry=policy, transport=httpx.MockTransport(gateway), **kwargs
    )


# --- the gateway client -----------------------------------------------------------------------------------------


async def test_rides_out_503s_and_lost_connections_then_succeeds() -> None:
    gateway = Gateway(503, 503, httpx.ConnectError("refused"), 502, httpx.ReadTimeout("slow"), 504, 503)
    waits: list[float] = []
    async with _client(gateway, on_retry=lambda error, wait_s: waits.append(wait_s)) as client:
        results = await client.publish_batch("education", [b"{}"])
    assert results == OK_RESULTS["results"]
    assert len(gateway.requests) == 8 and len(waits) == 7
    assert all(0 <= w <= FAST.max_wait_s for w in waits)


async def test_gives_up_after_the_deadline_with_a_clear_error() -> None:
    gateway = Gateway(then=503)
    policy = RetryPolicy(deadline_s=0.3, initial_s=0.01, max_wait_s=0.05)
    started = time.monotonic()
    async with _client(gateway, policy) as client:
        with pytest.raises(GaveUpError) as caught:
            await client.publish_batch("education", [b"{}"])
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 0.3 + 0.05 + 0.5  # the deadline, never more than one wait past it
    error = caught.value
    assert error.attempts == len(gateway.requests) >= 3
    assert isinstance(error.__cause__, ServerUnavailableError) and error.__cause__.status == 503
    message = str(error)
    assert message.startswith("sending a batch of 1 education events to the gateway: gave up after")
    assert "the server answered 503" in message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_never_retries_a_4xx(status: int) -> None:
    gateway = Gateway(status)
    async with _client(gateway) as client:
        with pytest.raises(BatchRefused, match=f"the gateway answered {status}"):
            await client.publish_batch("education", [b"{}"])
    assert len(gateway.requests) == 1


async def test_a_500_is_retried_twice_at_most() -> None:
    once = Gateway(500, then=200)
    retried: list[float] = []
    async with _client(once, on_retry=lambda error, wait_s: retried.append(wait_s)) as client:
        assert await client.publish_batch("education", [b"{}"]) == OK_RESULTS["results"]
    assert len(retried) == 1 and len(once.requests) == 2
    always = Gateway(then=500)
    async with _client(always) as client:
        with pytest.raises(BatchRefused, match="the gateway answered 500"):
            await client.publish_batch("education", [b"{}"])
    assert len(always.requests) == 3  # the first answer and two retries
    mixed = Gateway(500, 503, 500, 503, then=500)  # 503s do not use up the 500s' allowance
    async with _client(mixed) as client:
        with pytest.raises(BatchRefused):
            await client.publish_batch("education", [b"{}"])
    assert len(mixed.requests) == 5


async def test_the_servers_retry_after_is_the_least_wait() -> None:
    gateway = Gateway(503, 503, retry_after="0.2")
    async with _client(gateway, RetryPolicy(deadline_s=10, initial_s=0.001, max_wait_s=1.0)) as client:
        await client.publish_batch("education", [b"{}"])
    gaps = [b - a for a, b in zip(gateway.requests, gateway.requests[1:], strict=False)]
    assert len(gaps) == 2 and all(g >= 0.2 for g in gaps)
    capped = Gateway(503, retry_after="3600")  # never longer than the policy's cap
    async with _client(capped, RetryPolicy(deadline_s=5, initial_s=0.001, max_wait_s=0.05)) as client:
        await client.publish_batch("education", [b"{}"])
    assert capped.requests[1] - capped.requests[0] < 1.0


async def test_a_stream_rides_out_an_outage_in_every_lane() -> None:
    gateway = Gateway(*([503] * 6))
    records = [("education", f"{n:018d}".encode(), b"{}") for n in range(40)]
    async with _client(gateway) as client:
        tally = await client.publish_stream(records, lanes=3, batch_size=10)
    assert tally.retries == 6 and tally.sent == len(gateway.requests) - 6  # one result per answered batch here


def test_retry_after_values() -> None:
    assert retry_after_seconds("5") == 5.0 and retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds(None) is None and retry_after_seconds("-1") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_the_policy_decides_what_is_retried() -> None:
    decide = RetryPolicy().retryable()
    assert decide(ServerUnavailableError(503, "")) and decide(ServerUnavailableError(502, ""))
    assert not decide(ServerUnavailableError(501, ""))
    assert decide(httpx.ConnectError("x")) and decide(httpx.RemoteProtocolError("closed"))
    assert not decide(httpx.LocalProtocolError("a bug")) and not decide(httpx.UnsupportedProtocol("ftp"))
    assert decide(kafka.KafkaConnectionError()) and decide(ConnectionResetError())
    assert not decide(ValueError("bad")) and not decide(kafka.MessageSizeTooLargeError())
    assert RetryPolicy().retryable(also=lambda e: isinstance(e, KeyError))(KeyError("x"))


# --- the publisher SDK --------------------------------------------------------------------------------------------


def _error(cause: BaseException) -> PublishError:
    error = PublishError(f"Kafka did not acknowledge ({type(cause).__name__})")
    error.__cause__ = cause
    return error


class FlakyKafka(Publisher):
    """``send_records`` with a script: per call, the indexes (within that call) Kafka does not acknowledge."""

    def __init__(self, failures: list[tuple[set[int], BaseException]], **kwargs: Any) -> None:
        super().__init__("127.0.0.1:9", **kwargs)
        self.failures = failures
        self.calls: list[list[Record]] = []

    async def send_records(self, records: Any) -> Any:
        self.calls.append(list(records))
        failed, cause = self.failures.pop(0) if self.failures else (set(), None)
        offsets = {r[1]: n for n, r in enumerate(records)}
        return [
            _error(cause) if i in failed and cause is not None else (r[0], 0, offsets[r[1]])
            for i, r in enumerate(records)
        ]


RECORDS: list[Record] = [("topic", f"k{n}".encode(), f"v{n}".encode()) for n in range(6)]


async def test_the_publisher_sends_again_only_what_an_outage_kept_from_kafka() -> None:
    publisher = FlakyKafka(
        [({3, 4, 5}, kafka.KafkaConnectionError()), ({0, 1, 2}, kafka.RequestTimedOutError())], retry=FAST
    )
    acknowledged = await publisher.deliver(RECORDS)
    assert [c[0][1] for c in publisher.calls] == [b"k0", b"k3", b"k3"]  # each time the suffix still missing
    assert [len(c) for c in publisher.calls] == [6, 3, 3]
    assert len(acknowledged) == 6


async def test_the_publisher_does_not_retry_a_refused_record() -> None:
    publisher = FlakyKafka([({2}, kafka.MessageSizeTooLargeError())], retry=FAST)
    with pytest.raises(PublishError, match="MessageSizeTooLargeError"):
        await publisher.deliver(RECORDS)
    assert len(publisher.calls) == 1


async def test_the_publisher_gives_up_after_its_deadline() -> None:
    outage = [({0, 1, 2, 3, 4, 5}, kafka.KafkaConnectionError())] * 1000
    publisher = FlakyKafka(outage, retry=RetryPolicy(deadline_s=0.2, initial_s=0.01, max_wait_s=0.02))
    with pytest.raises(PublishError, match=r"unavailable .*gave up after \d+ attempts") as caught:
        await publisher.deliver(RECORDS)
    assert isinstance(caught.value.__cause__, GaveUpError)


# --- the outbox relay -----------------------------------------------------------------------------------------------


class _EmptyOutbox:
    """An outbox database connection with nothing to send."""

    def __init__(self) -> None:
        self.closed = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def fetch(self, *args: Any) -> list[Any]:
        return []

    def is_closed(self) -> bool:
        return self.closed

    async def close(self, **options: Any) -> None:
        self.closed = True


async def test_the_relay_rides_out_an_unreachable_database_and_stops_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[float] = []
    stop = asyncio.Event()

    async def connect(dsn: str, **options: Any) -> Any:
        attempts.append(time.monotonic())
        if len(attempts) <= 4:
            raise ConnectionRefusedError(111, "Connect call failed")
        stop.set()  # the first round that works is the last one
        return _EmptyOutbox()

    monkeypatch.setattr(f"{relay_module}.asyncpg.connect", connect)
    relay = OutboxRelay(Outbox(), Publisher("127.0.0.1:9"), retry=RetryPolicy(deadline_s=None, initial_s=0.01))
    await asyncio.wait_for(relay.run("postgresql://nowhere", stop), 10)
    assert len(attempts) == 5


async def test_the_relay_stops_during_its_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def connect(dsn: str, **options: Any) -> Any:
        raise ConnectionRefusedError(111, "Connect call failed")

    monkeypatch.setattr(f"{relay_module}.asyncpg.connect", connect)
    stop = asyncio.Event()
    relay = OutboxRelay(Outbox(), Publisher("127.0.0.1:9"), retry=RetryPolicy(deadline_s=None, initial_s=60))
    running = asyncio.create_task(relay.run("postgresql://nowhere", stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(running, 5)  # returns, without an error, instead of sleeping out its backoff


# --- the simulator's department tokens --------------------------------------------------------------------------------


class _Database:
    """``ingest_cmd._connect``: refuses while ``down`` (a count of attempts, or for ever), records statements."""

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.connects = 0

    async def __call__(self, settings: Settings) -> Any:
        self.connects += 1
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        return _Recorder(self)

    def revoked(self) -> list[str]:
        return [args[0] for sql, args in self.statements if sql.startswith(f"UPDATE {_TOKENS}")]

    def issued(self) -> list[str]:
        return [args[2] for sql, args in self.statements if sql.startswith(f"INSERT INTO {_TOKENS}")]


class _Recorder:
    def __init__(self, database: _Database) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def execute(self, sql: str, *args: Any) -> str:
        self.database.statements.append((sql, args))
        return "OK"

    async def close(self, **options: Any) -> None:
        return None


def _tokens_with(monkeypatch: pytest.MonkeyPatch, database: _Database) -> Callable[[], Any]:
    monkeypatch.setattr(ingest_cmd, "_connect", database)
    monkeypatch.setattr(ingest_cmd, "err", Console(file=io.StringIO()))
    return lambda: ingest_cmd.simulation_tokens(Settings(), FAST)


async def test_the_simulations_tokens_are_revoked_when_it_succeeds_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    database = _Database(down=3)  # PostgreSQL comes back while the tokens are issued
    tokens = _tokens_with(monkeypatch, database)
    async with tokens() as issued:
        assert sorted(issued) == ["education", "health", "public_security", "social_security"]
    assert len(database.revoked()) == 1
    label = database.revoked()[0]
    assert label.startswith("renkou simulate ") and set(database.issued()) == {label}

    with pytest.raises(GaveUpError):
        async with tokens():
            raise GaveUpError("sending a batch", 9, 300.0, None)
    assert len(database.revoked()) == 2


async def test_the_simulations_tokens_are_revoked_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    database = _Database()
    entered = asyncio.Event()

    async def run() -> None:
        async with _tokens_with(monkeypatch, database)():
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run())
    await entered.wait()
    database.down = 2  # and PostgreSQL is away for a moment when it happens
    task.cancel()  # what asyncio.run does on the first Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(database.revoked()) == 1


async def test_tokens_that_cannot_be_revoked_are_named_in_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    database = _Database()
    warnings = io.StringIO()
    tokens = _tokens_with(monkeypatch, database)
    monkeypatch.setattr(ingest_cmd, "err", Console(file=warnings, width=400))
    monkeypatch.setattr(ingest_cmd, "CLEANUP_DEADLINE_S", 0.1)
    with pytest.raises(RuntimeError, match="the run failed"):
        async with tokens():
            database.down = 10_000
            raise RuntimeError("the run failed")
    assert database.revoked() == []
    label = database.issued()[0]
    assert f"WHERE label = '{label}'" in warnings.getvalue()


def test_a_loop_that_retries_by_itself_waits_as_the_policy_does() -> None:
    policy = RetryPolicy(initial_s=0.5, max_wait_s=5.0)
    for attempt in range(1, 12):
        waits = [policy.wait_s(attempt) for _ in range(50)]
        assert all(0 <= w <= min(5.0, 0.5 * 2 ** (attempt - 1)) for w in waits)
    assert len({round(policy.wait_s(6), 6) for _ in range(20)}) > 1  # jittered: two workers part


async def test_a_daemon_retries_a_bug_with_its_traceback_and_an_outage_without(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[BaseException] = [KeyError("a bug"), ConnectionRefusedError("refused")]

    async def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "done"

    async def no_wait(_: float) -> None:
        return None

    caplog.set_level("INFO", logger="renkou.retry")
    assert await DAEMON_RETRY.retrying("the daemon's work", retryable=any_error, sleep=no_wait)(flaky) == "done"
    bug, outage = caplog.records
    assert (bug.levelname, bug.exc_info is not None) == ("WARNING", True)
    assert (outage.levelname, outage.exc_info) == ("INFO", None)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):  # stopping the service stops its loop
        await DAEMON_RETRY.retrying("the daemon's work", retryable=any_error, sleep=no_wait)(cancelled)
