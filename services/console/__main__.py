"""``python -m services.console``: the web console for operators, auditors and citizens (CONTRACT §14)."""

from __future__ import annotations

import uvicorn

from services.console.app import create_app
from services.runtime import configure_logging
from services.settings import get_settings


def main() -> None:
    # An argument --renkou-state=DIR may follow: it only marks the process as started by `renkou up`.
    settings = get_settings()
    configure_logging()
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.console_port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=settings.console_trusted_proxies,
    )


if __name__ == "__main__":
    main()
