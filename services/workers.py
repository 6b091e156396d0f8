"""One service, several worker processes: uvicorn's supervisor, Prometheus counters shared, no orphans.

A service whose work is Python CPU (the gateway validating events, the projector folding them) runs one worker
process per core. ``serve`` starts them under uvicorn's supervisor (one listening socket, workers restarted
when they die, SIGTERM/SIGINT passed on for a graceful stop). Their Prometheus values go to a folder of their
own (``PROMETHEUS_MULTIPROC_DIR``) that ``metrics_registry`` reads, so ``/metrics`` reports the whole service
whichever worker answers. Each worker calls ``die_with_parent`` first: if the supervisor is killed outright
(SIGKILL), its workers stop too instead of running on unseen.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

from services.runtime import configure_logging

SUPERVISOR_PID_ENV = "RENKOU_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_count(variable: str, *, most: int | None = None) -> int:
    """The ``variable`` from the environment if set (at least 1), else one per core (at most ``most``)."""
    configured = os.environ.get(variable, "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise SystemExit(f"{variable}={configured!r} is not a whole number of worker processes") from None
    cores = os.cpu_count() or 1
    return max(1, min(most, cores) if most else cores)


def serve(factory: str, workers: int, **options: Any) -> None:
    """Serve the ASGI app made by ``factory`` ("module:function") from ``workers`` processes (blocks)."""
    metrics_dir = tempfile.mkdtemp(prefix="renkou-metrics-")
    # The workers are fresh interpreters: they read both before importing prometheus_client.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    try:
        uvicorn.run(factory, factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def metrics_response(own: CollectorRegistry) -> Response:
    """``GET /metrics`` of an HTTP service: the text exposition of ``metrics_registry(own)``."""
    return Response(generate_latest(metrics_registry(own)), media_type=CONTENT_TYPE_LATEST)


def metrics_registry(own: CollectorRegistry) -> CollectorRegistry:
    """The registry ``/metrics`` should expose: every worker's values under a supervisor, else ``own``."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return own
    shared = CollectorRegistry()
    MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
    return shared


def start_worker() -> None:
    """What a worker process does first, in the app factory ``serve`` was given: its supervisor's lifetime, its logs."""
    die_with_parent()
    configure_logging()


def die_with_parent() -> None:
    """In a worker started by ``serve``: receive SIGTERM when the supervisor dies (Linux), exit if it already has."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if not supervisor or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # the supervisor died before the line above took effect
        raise SystemExit("the supervisor of this worker is gone")
