"""A PostgreSQL primary with a synchronous hot standby of its own for a test or a benchmark (CONTRACT §13): its own
ports and folder, the session's Kafka secrets (so services whose state folder is the pair's sign in to Kafka)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.infra.ports import StackLayout, free_port
from services.infra.stack import LocalStack
from services.kafka.auth import secrets_dir
from services.settings import project_root
from tests.support.infra import current


@dataclass
class Pair:
    layout: StackLayout
    stack: LocalStack

    @property
    def standby_url(self) -> str:
        """The owner's URL of the standby alone (whichever server is in recovery)."""
        return self.layout.database_url.replace("target_session_attrs=read-write", "target_session_attrs=standby")


@contextmanager
def pg_pair(label: str) -> Iterator[Pair]:
    """Start a primary and its synchronous standby under ``.local/<label>-<random>``, migrated; stop and remove
    them afterwards."""
    state = project_root() / ".local" / f"{label}-{uuid.uuid4().hex[:6]}"
    # The session's Kafka secrets (its principals sign in with them); PostgreSQL's are this pair's own.
    shutil.copytree(secrets_dir(current().state_dir), secrets_dir(state))
    layout = StackLayout(
        state_dir=state,
        kafka_port=1,
        controller_port=2,
        pg_port=free_port(2),  # the primary's, and the standby's after it
        pg_user="renkou",
        pg_password="renkou",
        pg_database="renkou",
        pg_standby=True,
    )
    stack = LocalStack(layout)
    try:
        assert stack.postgres.start() and stack.standby is not None and stack.standby.start()
        asyncio.run(upgrade(layout.database_url))
        yield Pair(layout, stack)
    finally:
        if stack.standby is not None:
            stack.standby.stop()
        stack.postgres.stop()
        shutil.rmtree(state, ignore_errors=True)


async def standby_caught_up(pair: Pair, wait_s: float = 30.0) -> None:
    """Return once the standby has applied everything the primary has written so far."""
    primary = await asyncpg.connect(asyncpg_dsn(pair.layout.database_url))
    standby = await asyncpg.connect(asyncpg_dsn(pair.standby_url))
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        deadline = asyncio.get_running_loop().time() + wait_s
        while await standby.fetchval("SELECT pg_last_wal_replay_lsn() < $1::pg_lsn", target):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the standby did not catch up within {wait_s:.0f}s")
            await asyncio.sleep(0.02)
    finally:
        await primary.close()
        await standby.close()
