"""What every console request shares: settings, the database pool, sessions, jobs, templates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
from jinja2 import Environment

from services.console.actions import record_action
from services.console.jobs import Job, JobRunner
from services.console.sessions import LoginThrottle, SessionStore
from services.settings import Settings

if TYPE_CHECKING:
    from fastapi import Request

log = logging.getLogger("renkou.console")


@dataclass
class ConsoleContext:
    settings: Settings
    pool: asyncpg.Pool
    sessions: SessionStore
    throttle: LoginThrottle
    templates: Environment
    jobs: JobRunner = field(default_factory=lambda: JobRunner({}))

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
                    detail={"job": job.id, "result": job.result, "error": job.error},
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.error("the end of job %s could not be recorded: %s", job.id, exc)


def context_of(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx
