"""``python -m services.query_api``: serve the query API on 127.0.0.1:``RENKOU_QUERY_API_PORT`` (8000)."""

from __future__ import annotations

import gc

import uvicorn

from services.query_api.app import create_app
from services.runtime import configure_logging
from services.settings import get_settings


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    app = create_app(settings)
    # Everything imported so far lives as long as the process: keep it out of the garbage collector's full
    # collections, whose pauses would otherwise show in the latency tail.
    gc.freeze()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=settings.query_api_port,
        log_level="warning",
        access_log=False,
        # uvloop and httptools: the fast event loop and HTTP parser (both installed with uvicorn[standard]).
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
