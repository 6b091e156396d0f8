"""What every console request shares: settings, the database pool, sessions, jobs, templates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from jinja2 import Environment

from services.console.actions import record_action
from services.console.jobs import Job, JobRunner
from services.console.sessions import LoginThrottle, SessionStore
from services.identity.oidc import CitizenTokenVerifier
from services.operations.status import Status, status
from services.settings import Settings

if TYPE_CHECKING:
    from fastapi import Request

log = logging.getLogger("renkou.console")

MAX_WAITING_LOGINS = 8
"""Logins waiting for their password check before more are refused (429) rather than queued."""


class LoginsBusyError(Exception):
    """Too many logins wait for a password check."""


class HashTurns:
    """One password hash at a time (argon2id: 64 MiB and a fraction of a second of CPU each), so logins cannot take
    every core and the memory; and no more than ``max_waiting`` wait for their turn: the next is refused at once."""

    def __init__(self, max_waiting: int = MAX_WAITING_LOGINS) -> None:
        self.max_waiting = max_waiting
        self._turn = asyncio.Semaphore(1)
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Logins waiting for their turn."""
        return self._waiting

    @property
    def busy(self) -> bool:
        """Whether a password is being checked now."""
        return self._turn.locked()

    @asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        """The turn to check a password; ``LoginsBusyError`` at once when too many already wait for theirs."""
        if self._turn.locked() and self._waiting >= self.max_waiting:
            raise LoginsBusyError
        self._waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._turn.release()


@dataclass
class ConsoleContext:
    settings: Settings
    pool: asyncpg.Pool
    sessions: SessionStore
    throttle: LoginThrottle
    templates: Environment
    verifier: CitizenTokenVerifier
    jobs: JobRunner = field(default_factory=lambda: JobRunner({}))
    hashing: HashTurns = field(default_factory=HashTurns)
    _status: tuple[float, Status] | None = None
    _status_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def status(self, max_age_s: float = 2.0) -> Status:
        """The stack's status, computed at most once per ``max_age_s`` however many pages poll it (each computation
        opens a Kafka client and a database connection)."""
        async with self._status_lock:
            if self._status is None or time.monotonic() - self._status[0] > max_age_s:
                self._status = (time.monotonic(), await status(self.settings))
            return self._status[1]

    async def job_ended(self, job: Job) -> None:
        """A job's end is a console action of the operator who started it."""
        try:
            async with self.pool.acquire() as conn:
                await record_action(
                    conn,
                    actor=job.started_by,
                    role="operator",
                    action=f"{job.kind} finished",
                    target=job.shadow,
                    outcome=job.state,
                    detail={"job": job.id, "result": summary(job.result), "error": job.error},
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.error("the end of job %s could not be recorded: %s", job.id, exc)


def summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A job's result without the rows a verify found different (they name residents and hold their values): the
    record of console actions keeps counts, never a resident's data."""
    if result is None:
        return None
    brief = {k: v for k, v in result.items() if k not in ("differences", "tables")}
    if "tables" in result:
        brief["differing_rows"] = sum(int(t.get("differing", 0)) for t in result["tables"])
    return brief


def context_of(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx
