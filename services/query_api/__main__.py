"""``python -m services.query_api``: serve the query API on ``RENKOU_BIND_HOST``:``RENKOU_QUERY_API_PORT``.

Rendering views and serving HTTP are Python CPU, so the query API runs one worker process per core, up to four
(``RENKOU_QUERY_API_WORKERS`` overrides; ``services.workers``); each worker has its own connections and its own
access-log writer, and every access-log chain stays linear across them (each citizen's head row is locked).
"""

from __future__ import annotations

import gc
from typing import Any

import uvicorn

from services.query_api.app import create_app
from services.runtime import configure_logging
from services.settings import get_settings
from services.workers import serve, worker_count

MAX_DEFAULT_WORKERS = 4


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    options: dict[str, Any] = {
        "host": settings.bind_host,
        "port": settings.query_api_port,
        "log_level": "warning",
        "access_log": False,
        # uvloop and httptools: the fast event loop and HTTP parser (both installed with uvicorn[standard]).
        "loop": "uvloop",
        "http": "httptools",
    }
    count = worker_count("RENKOU_QUERY_API_WORKERS", most=MAX_DEFAULT_WORKERS)
    if count > 1:
        serve("services.query_api.app:create_worker_app", count, **options)
        return
    app = create_app(settings)
    # Everything imported so far lives as long as the process: keep it out of the garbage collector's full
    # collections, whose pauses would otherwise show in the latency tail.
    gc.freeze()
    uvicorn.run(app, **options)


if __name__ == "__main__":
    main()
