"""``python -m services.projector``: run the projector with its HTTP endpoints on ``RENKOU_BIND_HOST`` (127.0.0.1).

Folding events is Python CPU, so the projector runs one worker process per core (``RENKOU_PROJECTOR_WORKERS``
overrides; ``services.workers``): each worker is a full projector — its own consumer in the one consumer group,
its own database pool — and Kafka shares the partitions among them as it would among projectors on several
machines; the checkpoint fence keeps that exactly once through every rebalance. ``/metrics`` and ``/healthz``
answer for the whole projector on ``RENKOU_PROJECTOR_METRICS_PORT``.
"""

from __future__ import annotations

import uvicorn

from services.runtime import configure_logging
from services.settings import get_settings
from services.workers import serve, worker_count


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    options = {"host": settings.bind_host, "port": settings.projector_metrics_port, "log_level": "warning"}
    count = worker_count("RENKOU_PROJECTOR_WORKERS")
    if count == 1:
        # Imported here: a supervisor of workers stays small (it only runs uvicorn's supervisor).
        from services.projector.app import create_app
        from services.runtime import tune_gc_for_batches

        app = create_app(settings)
        tune_gc_for_batches()
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    serve("services.projector.app:create_worker_app", count, **options)


if __name__ == "__main__":
    main()
