"""`renkou run` (what `make run` starts) as a user runs it: from nothing to "ready", the printed queries work as
printed, and Ctrl-C leaves nothing of ours running.

The run gets ports and a state folder of its own, so it never meets a developer's stack or the test stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from events.examples import example_event
from services.infra.ports import port_open
from services.infra.process import cmdline
from services.settings import project_root

KAFKA_PORT, PG_PORT = 49092, 45433
RESIDENTS = 40
READY_TIMEOUT_S = 900


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _processes_under(state: Path) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and str(state) in cmdline(int(p.name))]


def _reader(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


@pytest.mark.e2e
def test_run_reaches_ready_the_printed_queries_work_and_ctrl_c_stops_everything() -> None:
    if port_open(KAFKA_PORT) or port_open(KAFKA_PORT + 1) or port_open(PG_PORT):
        pytest.skip(f"ports {KAFKA_PORT}/{PG_PORT} are taken by something else on this machine")
    state = project_root() / ".local" / f"e2e-run-{os.getpid()}"
    query_port, gateway_port, projector_port, relay_port, console_port = _free_ports(5)
    env = {
        **os.environ,
        "RENKOU_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
        "RENKOU_DATABASE_URL": f"postgresql+asyncpg://renkou:renkou@127.0.0.1:{PG_PORT}/renkou",
        "RENKOU_STATE_DIR": str(state),
        "RENKOU_QUERY_API_PORT": str(query_port),
        "RENKOU_GATEWAY_PORT": str(gateway_port),
        "RENKOU_PROJECTOR_METRICS_PORT": str(projector_port),
        "RENKOU_VIEW_RELAY_PORT": str(relay_port),
        "RENKOU_CONSOLE_PORT": str(console_port),
        "RENKOU_TOPIC_NAMESPACE": "",
        "COLUMNS": "200",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--residents", str(RESIDENTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=project_root(),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(run.stdout, lines), daemon=True).start()
    output: list[str] = []

    def read_until(marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"`renkou run` ended before {marker!r}:\n{''.join(output)}")
            output.append(line)
            if marker in line:
                return
        raise AssertionError(f"no {marker!r} within {timeout:.0f}s:\n{''.join(output)}")

    try:
        read_until("renkou is ready", READY_TIMEOUT_S)
        text = "".join(output)
        assert "started gateway" in text and "started projector" in text, text
        assert "lag 0" in text and "0 rejected" in text, text

        # Every printed command works exactly as printed (curl only where a curl binary exists).
        commands = [line.strip() for line in output if line.startswith("  curl ") or line.startswith("  .venv/")]
        shown = [c for c in commands if "renkou resident show" in c]
        assert shown, text
        citizen_id = shown[0].split()[-1]
        for command in commands:
            if command.startswith("curl ") and not _has_curl():
                command = _as_python_request(command)
            done = subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, env=env, cwd=project_root(), timeout=60
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            if ("/v1/residents/" in command and command.endswith(citizen_id)) or "resident show" in command:
                assert json.loads(done.stdout)["citizen_id"] == citizen_id, done.stdout
            elif "/v1/" in command:
                assert "error" not in json.loads(done.stdout), done.stdout

        # The demo credentials: kept private, printed again by `renkou demo-tokens`, and they work.
        tokens_file = state / "demo-tokens.json"
        assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
        again = subprocess.run(
            [sys.executable, "-m", "services.cli", "demo-tokens", "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=project_root(),
            timeout=60,
        )
        credentials = json.loads(again.stdout)
        assert credentials == json.loads(tokens_file.read_text())
        event = example_event("vaccination.recorded")
        headers = {"Authorization": f"Bearer {credentials['departments']['health']}"}
        first = httpx.post(f"{credentials['gateway']}/v1/events", json=event, headers=headers, timeout=30)
        assert first.status_code == 202, first.text
        repeat = httpx.post(f"{credentials['gateway']}/v1/events", json=event, headers=headers, timeout=30)
        assert repeat.status_code == 200 and repeat.json() == first.json()
        # The console: the demo operator logs in (CSRF token from the form) and sees the status page.
        web = credentials["console"]
        assert web["url"] in text and "demo-operator" in text, text
        with httpx.Client(base_url=web["url"], timeout=30) as browser:
            form = browser.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            password = web["accounts"]["demo-operator"]["password"]
            login = browser.post("/login", data={"csrf": csrf, "name": "demo-operator", "password": password})
            assert login.status_code == 303, login.text
            assert browser.get("/?lang=en").text.count("Total lag") == 1
            assert browser.get("/me/login").status_code == 303  # the demo identity provider is on
        # The gateway's metrics count every worker's events, whichever worker answers the scrape.
        published = int(
            next(line for line in output if "published " in line and " new," in line).split()[2].replace(",", "")
        )
        metrics = httpx.get(f"{credentials['gateway']}/metrics", timeout=30).text
        accepted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("renkou_gateway_events_total{") and 'outcome="accepted"' in line
        )
        # ...the simulated city, the printed department `curl` (one new event), and the event just sent.
        printed = sum(1 for c in commands if "/v1/events" in c)
        assert printed == 1, commands
        assert accepted == published + printed + 1, metrics
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=180)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        with contextlib.suppress(queue.Empty):
            while (line := lines.get(timeout=10)) is not None:
                output.append(line)
        if _processes_under(state):  # clean up after a failure, so that the next run finds its ports free
            subprocess.run(
                [sys.executable, "-m", "services.cli", "down"], env=env, cwd=project_root(), timeout=180, check=False
            )

    text = "".join(output)
    assert run.returncode == 0, text
    assert "stopped gateway" in text and "stopped Kafka" in text and "stopped PostgreSQL" in text, text
    assert _processes_under(state) == []
    for port in (KAFKA_PORT, PG_PORT, query_port, gateway_port, projector_port, relay_port, console_port):
        assert not port_open(port), f"port {port} still open:\n{text}"
    shutil.rmtree(state, ignore_errors=True)  # a stack of its own: nothing in it is needed afterwards


def _has_curl() -> bool:
    return subprocess.run(["bash", "-c", "command -v curl"], capture_output=True, check=False).returncode == 0


def _as_python_request(command: str) -> str:
    """The same GET as a printed curl command, for machines without curl."""
    args = shlex.split(command)
    headers = {
        args[i + 1].split(":", 1)[0]: args[i + 1].split(":", 1)[1].strip() for i, a in enumerate(args) if a == "-H"
    }
    url = args[-1]
    script = (
        "import httpx, sys; r = httpx.get(sys.argv[1], headers=dict(h.split(': ', 1) for h in sys.argv[2:]));"
        " print(r.text); sys.exit(0 if r.status_code == 200 else 22)"
    )
    return shlex.join([sys.executable, "-c", script, url, *[f"{k}: {v}" for k, v in headers.items()]])
