"""`renkou up` / `down` as a user runs them: idempotent, and nothing of ours left running afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.infra.ports import port_open
from services.infra.process import cmdline
from services.settings import project_root

KAFKA_PORT, PG_PORT = 29092, 25433


def _renkou(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RENKOU_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
        "RENKOU_DATABASE_URL": f"postgresql+asyncpg://renkou:renkou@127.0.0.1:{PG_PORT}/renkou",
        "RENKOU_STATE_DIR": str(state),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=project_root(),
        timeout=300,
        check=False,
    )


def _processes_under(state: Path) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and str(state) in cmdline(int(p.name))]


@pytest.mark.e2e
def test_up_twice_then_down_leaves_nothing_running(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = project_root() / ".local" / f"e2e-{os.getpid()}"
    if port_open(KAFKA_PORT) or port_open(PG_PORT):
        pytest.skip(f"ports {KAFKA_PORT}/{PG_PORT} are taken by something else on this machine")
    try:
        first = _renkou(state, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "started Kafka" in first.stdout and "started PostgreSQL" in first.stdout
        second = _renkou(state, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already up" in second.stdout
        status = _renkou(state, "infra", "status")
        assert status.returncode == 0 and status.stdout.count(" up ") == 2, status.stdout
        assert _processes_under(state), "the servers should run with their state under our folder"
    finally:
        down = _renkou(state, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped Kafka" in down.stdout and "stopped PostgreSQL" in down.stdout, down.stdout + down.stderr
    assert not port_open(KAFKA_PORT) and not port_open(PG_PORT), down.stdout + down.stderr
    left = {pid: cmdline(pid)[:200] for pid in _processes_under(state)}
    assert left == {}, f"still running after down: {left}\n{down.stdout}{down.stderr}"
    again = _renkou(state, "down")
    assert again.returncode == 0 and "nothing of ours" in again.stdout, again.stdout + again.stderr
    status = _renkou(state, "infra", "status")
    assert status.returncode == 3, status.stdout + status.stderr
    shutil.rmtree(state, ignore_errors=True)  # a stack of its own: nothing in it is needed afterwards
