"""renkou's own long-running services (projector, view relay, gateway, query API) as background processes.

Same discipline as the servers: started detached with a PID file under the stack's state folder, reported up
only once their ``/readyz`` answers (every dependency reached), stopped by that PID and nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.infra.ports import port_open
from services.infra.process import InfraError, alive, is_ours, spawn, tail, terminate
from services.settings import Settings, project_root


@dataclass(frozen=True)
class AppSpec:
    name: str
    module: str
    port: int


def app_specs(settings: Settings) -> list[AppSpec]:
    """renkou's own services in start order (``down`` stops them in reverse)."""
    specs = [
        AppSpec("projector", "services.projector", settings.projector_metrics_port),
        AppSpec("view-relay", "services.view_relay", settings.view_relay_port),
        AppSpec("gateway", "services.gateway", settings.gateway_port),
    ]
    # The query API lands in its own change; until it is there, the stack runs without it.
    if importlib.util.find_spec("services.query_api") is not None:
        specs.append(AppSpec("query-api", "services.query_api", settings.query_api_port))
    specs.append(AppSpec("console", "services.console", settings.console_port))
    return specs


class AppProcess:
    def __init__(self, spec: AppSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.home = settings.state_dir / "apps"
        self.pid_file = self.home / f"{spec.name}.pid"
        self.log_file = self.home / f"{spec.name}.log"

    @property
    def marker(self) -> str:
        # Our command line carries the state folder, so a reused PID is never mistaken for ours.
        return f"--renkou-state={self.settings.state_dir}"

    def pid(self) -> int | None:
        return is_ours(self.pid_file, self.marker)

    def healthy(self) -> bool:
        try:
            url = f"{self.settings.local_url(self.spec.port)}/readyz"  # http, to a validated address
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
                return bool(200 <= response.status < 300)
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> bool:
        if self.pid() is not None:
            return False
        if port_open(self.spec.port, self.settings.local_host.strip("[]")):
            raise InfraError(f"port {self.spec.port} for the {self.spec.name} is taken by a process we did not start")
        self.home.mkdir(parents=True, exist_ok=True)
        # Each service finds its own Kafka principal and PostgreSQL role in the state folder (secrets/, mode 0600).
        env = {**self.settings.environment(), "PYTHONUNBUFFERED": "1"}
        pid = spawn(
            [sys.executable, "-m", self.spec.module, self.marker],
            log_file=self.log_file,
            pid_file=self.pid_file,
            env={**os.environ, **env},
            cwd=project_root(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                raise InfraError(f"the {self.spec.name} exited during start-up:\n{tail(self.log_file)}")
            if self.healthy():
                return True
            time.sleep(0.3)
        raise InfraError(
            f"the {self.spec.name} did not become ready (/readyz) within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        terminate(pid, timeout=30.0)
        self.pid_file.unlink(missing_ok=True)
        return True


def log_path(settings: Settings, name: str) -> Path:
    return settings.state_dir / "apps" / f"{name}.log"
