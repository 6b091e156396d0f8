"""``python -m services.projector``: run the projector with its HTTP endpoints on 127.0.0.1."""

from __future__ import annotations

import logging

import uvicorn

from services.projector.app import create_app
from services.runtime import tune_gc_for_batches
from services.settings import get_settings


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    tune_gc_for_batches()
    uvicorn.run(app, host="127.0.0.1", port=settings.projector_metrics_port, log_level="warning")


if __name__ == "__main__":
    main()
