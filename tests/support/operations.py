"""Operating the stack in tests as an operator does: a simulated history, a clean reference projection, the
``renkou`` CLI as its own process, and direct reads and writes of a test database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from services.db.dsn import asyncpg_dsn
from services.grants import GRANTABLE_SECTIONS
from services.settings import Settings
from services.simulator import simulate_bytes
from tests.support.infra import Endpoints
from tests.support.projector import publish, running_projector, settings_for, snapshot, wait_caught_up
from tests.support.query_api import grant, headers, running_query_api
from tests.support.stack import Databases, create_namespace

RENKOU = str(Path(sys.executable).with_name("renkou"))


def history(residents: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    return list(simulate_bytes(residents, seed=seed))


def topic(namespace: str, department: str) -> str:
    return f"{namespace}population.{department}.v1"


def records_for(
    namespace: str, items: Sequence[tuple[str, bytes, bytes]]
) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(topic(namespace, d), k, v) for d, k, v in items]


async def reference(
    infra: Endpoints, databases: Databases, items: Sequence[tuple[str, bytes, bytes]]
) -> dict[str, Any]:
    """The log projected once, cleanly: what every other run must equal."""
    settings, db = await projected(infra, databases, items)
    return await snapshot(db, settings.topic_namespace)


async def projected(
    infra: Endpoints, databases: Databases, items: Sequence[tuple[str, bytes, bytes]]
) -> tuple[Settings, str]:
    """A fresh namespace and database with ``items`` published and projected (the projector stopped again)."""
    ns = await create_namespace(infra)
    db = await databases.create()
    await publish(infra.kafka_bootstrap, records_for(ns, items))
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    return settings, db


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """stderr without progress-bar lines."""
        return [line for line in self.stderr.splitlines() if line.strip() and "━" not in line]


def cli_env(settings: Settings | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if settings is not None:
        env |= settings.environment()
    return env | dict(extra or {})


async def renkou(
    settings: Settings | None, *args: str, wait_s: float = 180, env: Mapping[str, str] | None = None
) -> Result:
    """Run the ``renkou`` CLI as an operator would (a process of its own)."""
    proc = await asyncio.create_subprocess_exec(
        RENKOU,
        *args,
        env=cli_env(settings, env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), wait_s)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def execute(database_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


# --- replay → verify → swap on a live stack ----------------------------------------------------------------------


GENESIS = bytes(32)


async def write_access_log(database_url: str, citizen_id: str, entries: int) -> None:
    """Append access-log entries by the rule the query API follows: body = canonical JSON, chained per citizen."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            head = await conn.fetchrow("SELECT chain_seq, head FROM access_log_heads WHERE citizen_id = $1", citizen_id)
            seq, prev = (head["chain_seq"], bytes(head["head"])) if head else (0, GENESIS)
            for _ in range(entries):
                seq += 1
                request = uuid.uuid4()
                entry = {
                    "citizen_id": citizen_id,
                    "consumer": "test-consumer",
                    "purpose": "public_service",
                    "sections": ["identity", "hukou"],
                    "endpoint": f"/v1/residents/{citizen_id}",
                    "request_id": str(request),
                    "accessed_at": f"2026-06-30T10:00:{seq:02d}+00:00",
                }
                body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
                link = hashlib.sha256(prev + body).digest()
                await conn.execute(
                    "INSERT INTO access_log (citizen_id, chain_seq, request_id, consumer, purpose, sections, endpoint, "
                    "accessed_at, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::timestamptz, "
                    "$9, $10, $11)",
                    citizen_id,
                    seq,
                    request,
                    entry["consumer"],
                    entry["purpose"],
                    entry["sections"],
                    entry["endpoint"],
                    entry["accessed_at"],
                    body,
                    prev,
                    link,
                )
                prev = link
            await conn.execute(
                "INSERT INTO access_log_heads (citizen_id, chain_seq, head) VALUES ($1, $2, $3) "
                "ON CONFLICT (citizen_id) DO UPDATE SET chain_seq = EXCLUDED.chain_seq, head = EXCLUDED.head",
                citizen_id,
                seq,
                prev,
            )
    finally:
        await conn.close()


@dataclass
class AuditorApi:
    """A query API of its own on a database of its own, and an auditor's headers for it."""

    url: str
    database_url: str
    auth: dict[str, str]


@asynccontextmanager
async def auditor_api(infra: Endpoints, auditor: str) -> AsyncIterator[AuditorApi]:
    """A fresh database, a grant of every section for the purpose ``audit`` named ``auditor``, and a query API
    serving it (``running_query_api``); all gone on exit."""
    databases = Databases(infra)
    db = await databases.create()
    token = await grant(db, auditor, GRANTABLE_SECTIONS, ["audit"])
    try:
        async with running_query_api(db) as server:
            yield AuditorApi(server.url, db, headers(token, "audit"))
    finally:
        await databases.drop_all()
