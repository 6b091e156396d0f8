"""Replay, verify and swap started from the console, each in its own child process (``services.console.job``).

One job at a time: they work on the same shadow schema and the projector's lock, so a second one is refused while
one runs. The job's lines (progress, then a result or an error) are read as they come; the page polls
``/jobs/<id>/progress`` and shows them. Jobs are kept in memory for the console's lifetime (the record that counts
is in ``console_actions``, written when the job is started and when it ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from services.settings import project_root

__all__ = ["KINDS", "Job", "JobBusyError", "JobRunner"]

KINDS: Final = ("replay", "verify", "swap")
LINE_LIMIT: Final = 1 << 20
"""The longest line a job may write (a verify's result with its differences)."""
KEEP: Final = 50
"""Jobs remembered (the oldest finished ones are forgotten first)."""


class JobBusyError(RuntimeError):
    """Another job runs; ``str`` names it."""


@dataclass
class Job:
    id: int
    kind: str
    shadow: str
    started_by: str
    started_at: datetime
    done: int = 0
    total: int = 0
    state: str = "running"  # running | succeeded | failed
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: datetime | None = None
    log: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int:
        if self.state == "succeeded":
            return 100
        return int(100 * self.done / self.total) if self.total else 0


OnEnd = Callable[[Job], Awaitable[None]]


class JobRunner:
    def __init__(self, env: Mapping[str, str], on_end: OnEnd | None = None) -> None:
        self.env = dict(env)
        self.on_end = on_end
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = asyncio.Lock()  # two simultaneous starts: the second sees the first as running

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    async def start(self, kind: str, shadow: str, started_by: str) -> Job:
        if kind not in KINDS:
            raise ValueError(f"job kind {kind!r} is not one of {', '.join(KINDS)}")
        async with self._starting:
            busy = self.running()
            if busy is not None:
                raise JobBusyError(
                    f"job {busy.id} ({busy.kind} → {busy.shadow}, by {busy.started_by}) is still running"
                )
            job = Job(next(self._ids), kind, shadow, started_by, datetime.now(UTC))
            self.jobs[job.id] = job  # running from here on, before the child exists
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "services.console.job",
                    kind,
                    shadow,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                    cwd=project_root(),
                    limit=LINE_LIMIT,
                    start_new_session=True,  # its own process group: a replay's worker processes stop with it
                )
            except OSError as exc:
                job.state, job.error, job.finished_at = "failed", f"the job could not start: {exc}", datetime.now(UTC)
                raise
        self._forget_old()
        task = asyncio.create_task(self._follow(job, process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _follow(self, job: Job, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                self._line(job, raw.decode("utf-8", errors="replace").rstrip("\n"))
            code = await process.wait()
            if job.state == "running":
                job.state = "failed"
                job.error = job.error or f"exited with code {code} without a result: " + " | ".join(job.log[-5:])
        except asyncio.CancelledError:
            await _kill(process)
            job.state, job.error = "failed", "the console stopped while the job ran"
            raise
        except Exception as exc:  # a line too long, a malformed message: the job fails, the runner carries on
            await _kill(process)
            job.state, job.error = "failed", f"the job's output could not be read ({type(exc).__name__}: {exc})"
        finally:
            job.finished_at = datetime.now(UTC)
            if self.on_end is not None:
                await self.on_end(job)

    @staticmethod
    def _line(job: Job, line: str) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            job.log = [*job.log[-49:], line]  # a warning or traceback of the child: kept for the failure message
            return
        if "progress" in message:
            done, total = message["progress"]
            job.done, job.total = int(done), int(total)
        elif "result" in message:
            job.state, job.result = "succeeded", message["result"]
        elif "error" in message:
            job.state, job.error = "failed", str(message["error"])

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.state != "running"]
        for job in finished[: max(0, len(self.jobs) - KEEP)]:
            self.jobs.pop(job.id, None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """The job and every process it started (its group, ours alone: started with a session of its own)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
