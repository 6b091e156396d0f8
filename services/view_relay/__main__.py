"""``python -m services.view_relay``: publish changed views to the compacted view topic."""

from __future__ import annotations

import uvicorn

from services.runtime import configure_logging
from services.settings import get_settings
from services.view_relay.app import create_app


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.view_relay_port, log_level="warning")


if __name__ == "__main__":
    main()
