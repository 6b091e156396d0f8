"""``python -m services.console.job replay|verify|swap SHADOW``: one operator job for the console, in a child process.

The console never holds the owner role that a replay, a verify or a swap needs (schema changes, CONTRACT §10):
it starts this process, which runs the same library function as ``renkou replay|verify|swap`` with the
credentials the CLI would use, and exits. It writes one JSON object per line on stdout — ``{"progress": [done,
total]}`` while it runs, then ``{"result": {...}}`` or ``{"error": "...", "code": N}`` — and the console turns them
into the job's page.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from services.operations.base import OperationError, quiet_kafka_logs
from services.operations.replay import DEFAULT_BATCH, default_workers
from services.operations.schemas import check_name
from services.settings import get_settings

KINDS = ("replay", "verify", "swap")
PROGRESS_EVERY_S = 0.5


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


class Progress:
    """The operations' ``progress(done, total)`` callback, written out at most twice a second (and at the end)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or done >= total:
            self.last = now
            emit({"progress": [done, total]})


async def run(kind: str, shadow: str) -> dict[str, Any]:
    settings = get_settings()
    progress = Progress()
    workers = default_workers()
    if kind == "replay":
        from services.operations.replay import replay

        r = await replay(settings, shadow, workers=workers, batch_size=DEFAULT_BATCH, progress=progress)
        return {
            "events": r.events,
            "seconds": round(r.seconds, 1),
            "applied": r.stats.applied,
            "duplicates": r.stats.duplicates,
            "dead_letters": r.stats.dead_letters,
            "target": sum(r.target.values()),
        }
    if kind == "verify":
        from services.operations.verify import verify

        v = await verify(settings, shadow, workers=workers, batch_size=DEFAULT_BATCH, progress=progress)
        return {
            "identical": v.identical,
            "events": v.events,
            # Counts only: the differing rows name residents and hold their values (`renkou verify` lists them).
            "tables": [t.__dict__ for t in v.comparison.tables],
        }
    from services.operations.swap import swap

    s = await swap(settings, shadow, workers=workers, progress=progress)
    return {"events": s.events, "old_schema": s.old_schema, "locked_ms": round(s.locked_ms, 1), "anchor": s.anchor}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        emit({"error": f"usage: python -m services.console.job {'|'.join(KINDS)} SHADOW", "code": 2})
        return 2
    kind, shadow = argv
    quiet_kafka_logs()
    try:
        check_name(shadow)
        emit({"result": asyncio.run(run(kind, shadow))})
    except OperationError as exc:
        emit({"error": str(exc), "code": exc.code})
        return exc.code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
