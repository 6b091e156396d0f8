"""Background processes we start and, by PID file, only those: never a process somebody else owns."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class InfraError(RuntimeError):
    """A launcher could not do its job; the message says what to do about it."""


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid_file: Path, marker: str) -> int | None:
    """The PID recorded in ``pid_file`` if that process is alive and is the one we started.

    ``marker`` is a string our command line contains (a path inside our state directory), so that a PID the
    kernel has since reused for somebody else's process is never mistaken for ours.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return None
    if marker not in cmdline(pid):
        return None
    return pid


def spawn(
    args: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``args`` detached in its own session, output to ``log_file``, PID to ``pid_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if we can.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _state(pid) not in ("Z", "")
    return done == 0


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def terminate(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM ``pid`` (and its process group), wait, then SIGKILL if it would not stop."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.1)
    if alive(pid):
        raise InfraError(f"process {pid} did not stop after SIGKILL")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
