"""``RENKOU_BIND_HOST``: every service listens where it says, loopback unless set (CONTRACT §13)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from services.settings import Settings, get_settings

SERVICES = ["services.gateway", "services.query_api", "services.projector", "services.view_relay"]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Each service's ``main`` up to ``uvicorn.run``, which records its options instead of serving."""
    seen: dict[str, Any] = {}

    def run(app: Any, **options: Any) -> None:
        seen.update(options)

    monkeypatch.setenv("RENKOU_BIND_HOST", "127.0.0.2")
    for workers in ("RENKOU_GATEWAY_WORKERS", "RENKOU_QUERY_API_WORKERS", "RENKOU_PROJECTOR_WORKERS"):
        monkeypatch.setenv(workers, "1")
    monkeypatch.setattr("uvicorn.run", run)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_listens_on_the_bind_host(
    service: str, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    main = importlib.import_module(f"{service}.__main__")
    monkeypatch.setattr(main, "configure_logging", lambda: None)
    main.main()
    assert served["host"] == "127.0.0.2"


def test_loopback_by_default() -> None:
    assert Settings().bind_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("bind", "probe"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104 - a wildcard is reached through loopback
        ("::", "http://[::1]:8000"),
        ("[::1]", "http://[::1]:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_the_cli_and_probes_reach_the_service_where_it_listens(bind: str, probe: str) -> None:
    assert Settings(bind_host=bind).local_url(8000) == probe


@pytest.mark.parametrize("bind", ["", "example.org", "127.0.0.1:8000", "300.1.1.1"])
def test_a_bind_host_that_is_not_an_address_is_refused(bind: str) -> None:
    with pytest.raises(ValidationError, match="RENKOU_BIND_HOST must be an IP address"):
        Settings(bind_host=bind)
