"""Driving the query API in tests: the service as its own process, grants, and projecting events directly.

``running_query_api`` starts ``python -m services.query_api`` exactly as ``renkou up`` does (its own process,
127.0.0.1, a free port) against a test database and stops it by its PID. ``project`` feeds events through the
projector's own pipeline (``BatchProjector``) without Kafka, for tests that need many small histories fast.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import orjson

from events import Event, Payload, department_topics, parse_event, topic_for
from events.examples import example_event
from projections.resident.store import PostgresProjectionStore
from services.anchor.keys import ensure_anchor_key
from services.db.dsn import asyncpg_dsn
from services.grants import add_grant
from services.infra.ports import free_port
from services.projector.pipeline import BatchProjector, LogRecord
from services.settings import project_root
from tests.support.infra import TEST_ANCHOR_KEY, current
from tests.support.projection import latest_birth


@dataclass(frozen=True)
class QueryApi:
    """A running query API process."""

    url: str
    pid: int
    log_path: str


@asynccontextmanager
async def running_query_api(database_url: str, *, startup_s: float = 30.0) -> AsyncIterator[QueryApi]:
    """``python -m services.query_api`` on a free loopback port against ``database_url``; stopped on exit."""
    port = free_port()
    ensure_anchor_key(TEST_ANCHOR_KEY)  # served at /v1/audit/public-key
    env = {
        "RENKOU_DATABASE_URL": database_url,
        "RENKOU_STATE_DIR": str(current().state_dir),  # it connects as its own role, renkou_query_api
        "RENKOU_QUERY_API_PORT": str(port),
        "RENKOU_AUDIT_ANCHOR_KEY_FILE": str(TEST_ANCHOR_KEY),
    }
    async with running_service("services.query_api", port, env, startup_s=startup_s) as service:
        yield service


@asynccontextmanager
async def running_service(
    module: str, port: int, env: Mapping[str, str], *, startup_s: float = 30.0
) -> AsyncIterator[QueryApi]:
    """``python -m <module>`` (one of renkou's HTTP services) with ``env``, until its ``/healthz`` answers on
    ``port``; stopped by its PID on exit."""
    log = tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting the child is instant; it is polled, never awaited
        [sys.executable, "-m", module, f"--renkou-state={tempfile.gettempdir()}"],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        cwd=project_root(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{module} exited during start-up:\n{_tail(log.name)}")
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not answer /healthz in {startup_s:.0f}s:\n{_tail(log.name)}")
                await asyncio.sleep(0.1)
        yield QueryApi(url=url, pid=proc.pid, log_path=log.name)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
        log.close()
        os.unlink(log.name)


def _tail(path: str, lines: int = 40) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


async def grant(
    database_url: str,
    name: str,
    sections: Sequence[str] = (),
    purposes: Sequence[str] = (),
    expires_at: datetime | None = None,
    *,
    by_purpose: Mapping[str, Sequence[str]] | None = None,
    view_topic: str | None = None,
) -> str:
    """A new grant in ``database_url`` (``sections`` × ``purposes``, or ``by_purpose``); its token."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await add_grant(conn, name, sections, purposes, expires_at, by_purpose=by_purpose, view_topic=view_topic)
    finally:
        await conn.close()


async def project(database_url: str, events: Iterable[Event[Payload] | dict[str, Any]]) -> int:
    """Apply ``events`` (in this order) with the projector's pipeline, as one batch on partition 0 of each topic.

    Offsets continue from the stored checkpoints, so calls can follow one another. Returns the events applied.
    """
    store = PostgresProjectionStore()
    projector = BatchProjector(store)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            topics = department_topics()
            next_offsets = {t: o for (t, _), o in (await store.read_checkpoints(conn, topics)).items()}
            records = []
            for event in events:
                if isinstance(event, dict):
                    department, key, value = event["source"]["department"], event["citizen_id"], orjson.dumps(event)
                else:
                    department, key, value = event.department, event.citizen_id, event.canonical_bytes()
                topic = topic_for(department)
                offset = next_offsets.get(topic, 0)
                next_offsets[topic] = offset + 1
                records.append(LogRecord(topic, 0, offset, key.encode(), value))
            result = await projector.process(conn, records)
    finally:
        await conn.close()
    if result.dead_letters:
        raise AssertionError(f"events rejected: {[d.reason for d in result.dead_letters]}")
    return result.applied


CHINA = timezone(timedelta(hours=8))


def event(
    event_type: str,
    citizen_id: str,
    on: date,
    *,
    recorded: datetime | None = None,
    drop: Iterable[str] = (),
    **payload: Any,
) -> dict[str, Any]:
    """A valid envelope of ``event_type`` about ``citizen_id``: the catalogue example with ``payload`` changes.

    It happened on ``on`` at 10:30 in China and was recorded an hour later, or at ``recorded``; optional payload
    fields named in ``drop`` are left out. Every call gets a fresh ``event_id``.
    """
    raw = example_event(event_type)
    occurred = datetime(on.year, on.month, on.day, 10, 30, tzinfo=CHINA)
    raw["event_id"] = str(uuid.uuid4())
    raw["citizen_id"] = citizen_id
    raw["occurred_at"] = occurred.isoformat()
    raw["recorded_at"] = (recorded or occurred + timedelta(hours=1)).isoformat()
    raw.pop("correlation_id", None)
    body = {k: v for k, v in raw["payload"].items() if k not in set(drop)}
    body.update({k: v.isoformat() if isinstance(v, date) else v for k, v in payload.items()})
    raw["payload"] = body
    # Nobody is recorded before they are born (events.envelope): a made-up history of the catalogue's examples is
    # recorded no earlier than the birth of everyone its event names.
    born = latest_birth(raw)
    if born is not None and datetime.fromisoformat(raw["recorded_at"]).astimezone(CHINA).date() < born:
        raw["recorded_at"] = datetime(born.year, born.month, born.day, 12, tzinfo=CHINA).isoformat()
    parse_event(raw)  # fail here, with the rule, rather than as a dead letter later
    return raw


def settlement(citizen_id: str, on: date, region: str, *, urban: bool = True) -> dict[str, Any]:
    """``hukou.registered`` of someone settling (reason ``other``) in ``region`` on ``on``, a household of their own."""
    return event(
        "hukou.registered",
        citizen_id,
        on,
        household_id=f"H-{citizen_id[-6:]}",
        region_code=region,
        urban=urban,
        reason="other",
        drop=("from_region_code", "legacy_nature"),
    )


def headers(token: str | None, purpose: str | None = None) -> dict[str, str]:
    """``Authorization`` and ``X-Purpose`` headers (either left out when ``None``)."""
    out = {}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    if purpose is not None:
        out["X-Purpose"] = purpose
    return out
