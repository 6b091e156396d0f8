"""The loops that run as long as their service (``services.retry.DAEMON_RETRY``): whatever fails is tried again
and logged, a bug with its traceback, and stopping the service stops them. The view relay's publishing loop and
the anchors' interval loop, without Kafka or PostgreSQL (their work replaced by a function that fails first)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from services.anchor.service import AnchorService
from services.settings import Settings
from services.view_relay.publisher import ViewPublisher

NOWHERE = Settings(
    database_url=SecretStr("postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none"),
    kafka_bootstrap="127.0.0.1:9",
    audit_anchor_interval_s=0.3,
)


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_view_relay_retries_whatever_failed_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="renkou.retry")
    failures: list[BaseException] = [KeyError("a bug"), ConnectionRefusedError("PostgreSQL is away")]
    drained = asyncio.Event()
    calls = 0

    async def publish_pending() -> bool:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        drained.set()
        return False

    nobody: Any = None
    relay = ViewPublisher(
        engine=nobody,
        producer=nobody,
        schema="projection",
        namespace="",
        published=Counter("published", "views", registry=CollectorRegistry()),
        today=date.today,
        consumer_topics=nobody,
        poll_s=0.05,
    )
    relay.publish_pending = publish_pending  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(drained.wait(), 10)
    await _stopped(task)  # stopping the relay stops its loop, retrying or not
    assert calls == 3
    bug, outage = (r for r in caplog.records if "publishing views failed" in r.getMessage())
    assert (bug.levelname, bug.exc_info is not None) == ("WARNING", True)
    assert (outage.levelname, outage.exc_info) == ("INFO", None)


async def test_an_anchor_that_keeps_failing_is_given_up_until_the_next_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    anchors = AnchorService(NOWHERE, private_key=Ed25519PrivateKey.generate())
    attempts = 0

    async def anchor_once(reason: str) -> Any:
        nonlocal attempts
        attempts += 1
        raise KeyError("a bug in the builder")

    anchors.anchor_once = anchor_once  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(anchors.run(0.0))
    for _ in range(100):
        if any("no anchor this interval" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    await _stopped(task)
    [given_up, *_] = [r for r in caplog.records if "no anchor this interval" in r.getMessage()]
    assert given_up.levelname == "ERROR" and "KeyError: 'a bug in the builder'" in given_up.getMessage()
    assert given_up.exc_info is not None and isinstance(given_up.exc_info[1], KeyError)
    assert attempts >= 2  # tried again within the interval before giving up
