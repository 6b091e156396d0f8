"""Test-suite wide configuration: hypothesis profiles, the test stack's state folder, the infrastructure banner."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_configure(config: pytest.Config) -> None:
    """Every ``Settings()`` of the run reads the test stack's state folder (its role passwords, keys), never a
    developer's own stack (``make run`` writes ``.local/stack``, whose passwords the test cluster does not know)."""
    from tests.support.infra import TEST_STATE_DIR

    os.environ["RENKOU_STATE_DIR"] = str(TEST_STATE_DIR)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    from tests.support.infra import USED_INFRASTRUCTURE

    used = config.stash.get(USED_INFRASTRUCTURE, None)
    terminalreporter.write_line(
        f"renkou infrastructure used: {used}" if used else "renkou infrastructure used: none (no integration test ran)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.support.infra import choose_mode

    return [f"renkou infrastructure mode: {choose_mode()} (see tests/support/infra.py)"]
