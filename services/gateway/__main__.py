"""``python -m services.gateway``: serve the gateway on 127.0.0.1:``RENKOU_GATEWAY_PORT`` (8001).

Validating and canonicalising events costs CPU (``parse_event``, ``canonical_bytes``), so the gateway runs one
worker process per core, up to four (``RENKOU_GATEWAY_WORKERS`` overrides): every worker has its own Kafka
producer and database pool, and idempotency holds across them because the claim on an ``event_id`` is a row in
PostgreSQL. With several workers the Prometheus counters are shared through a folder of their own
(``PROMETHEUS_MULTIPROC_DIR``), so that ``/metrics`` reports the whole gateway whichever worker answers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import uvicorn

from services.settings import get_settings

MAX_DEFAULT_WORKERS = 4


def workers() -> int:
    """``RENKOU_GATEWAY_WORKERS``, else one per core up to four."""
    configured = os.environ.get("RENKOU_GATEWAY_WORKERS", "").strip()
    if configured:
        return max(1, int(configured))
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = {
        "host": "127.0.0.1",
        "port": settings.gateway_port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    count = workers()
    if count == 1:
        from services.gateway.app import create_app

        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    # The workers are fresh interpreters that read this before importing prometheus_client.
    metrics_dir = tempfile.mkdtemp(prefix="renkou-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("services.gateway.app:create_app", factory=True, workers=count, **options)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
