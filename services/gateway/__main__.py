"""``python -m services.gateway``: serve the gateway on ``RENKOU_BIND_HOST``:``RENKOU_GATEWAY_PORT``.

Validating and canonicalising events costs CPU (``parse_event``, ``canonical_bytes``), so the gateway runs one
worker process per core, up to four (``RENKOU_GATEWAY_WORKERS`` overrides): every worker has its own Kafka
producer and database pool, and idempotency holds across them because the claim on an ``event_id`` is a row in
PostgreSQL. With several workers the Prometheus counters are shared through a folder of their own
(``PROMETHEUS_MULTIPROC_DIR``), so that ``/metrics`` reports the whole gateway whichever worker answers.
"""

from __future__ import annotations

import uvicorn

from services.runtime import configure_logging
from services.settings import get_settings
from services.workers import serve, worker_count

MAX_DEFAULT_WORKERS = 4


def workers() -> int:
    """``RENKOU_GATEWAY_WORKERS``, else one per core up to four."""
    return worker_count("RENKOU_GATEWAY_WORKERS", most=MAX_DEFAULT_WORKERS)


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    options = {
        "host": settings.bind_host,
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
    serve("services.gateway.app:create_worker_app", count, **options)


if __name__ == "__main__":
    main()
