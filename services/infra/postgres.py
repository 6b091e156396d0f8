"""A project-local PostgreSQL cluster: ``initdb`` into the stack's folder, ``pg_ctl`` to start and stop it.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the ``postgres`` system user
(created by Debian's package) and every server command runs through ``runuser``.

Only password authentication over TCP (scram-sha-256; no ``trust``, no Unix socket). The bootstrap superuser
``postgres`` creates the login roles of ``services.db.roles`` and the database (owned by ``renkou``); their
random passwords live in ``<state_dir>/secrets/postgres`` (mode 0600).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

from services.db.roles import (
    SUPERUSER,
    create_database,
    ensure_password,
    ensure_roles,
    save_password,
    stored_password,
)
from services.infra.ports import StackLayout, port_open
from services.infra.process import InfraError

_SERVER_SETTINGS = """
# --- renkou local stack ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 200
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = on
logging_collector = on
log_directory = '{log_dir}'
log_filename = 'postgresql.log'
log_min_messages = warning
timezone = 'UTC'
"""


def bin_dir() -> Path:
    """The directory holding ``initdb``/``pg_ctl`` of the newest PostgreSQL installed."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None:
        return Path(pg_ctl).resolve().parent
    raise InfraError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
        "(Debian: apt-get install postgresql; `make setup` does this when run as root)"
    )


def server_version() -> str:
    out = subprocess.run([str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
    return match.group(1) if match else out.stdout.strip()


class PostgresServer:
    """The database cluster of one stack: its files live under ``<state_dir>/postgres``."""

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.home = layout.state_dir / "postgres"
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"

    # PostgreSQL will not run as root; as root we hand the cluster to the postgres system user.
    def _owner(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                check=True,
            )
        return "postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = self._owner()
        cmd = ["runuser", "-u", owner, "--", *args] if owner else list(args)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            raise InfraError(f"{Path(args[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def _chown(self, path: Path) -> None:
        owner = self._owner()
        if owner is not None:
            shutil.chown(path, user=owner, group=None)

    def running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._run(str(bin_dir() / "pg_ctl"), "status", "-D", str(self.data_dir), check=False).returncode == 0

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if self.running() else None

    def _init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            if stored_password(self.layout.state_dir, SUPERUSER) is None:
                raise InfraError(
                    f"the PostgreSQL cluster in {self.data_dir} was made before this stack kept credentials (a "
                    f"superuser shared by every service, from an older renkou); remove {self.home} (make clean) "
                    "to start one with a login role per service"
                )
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The parents of a root-owned checkout must be traversable by the cluster's owner.
        for directory in (self.home, self.log_dir):
            self._chown(directory)
        pwfile = self.home / "pwfile"
        pwfile.write_text(ensure_password(self.layout.state_dir, SUPERUSER) + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run(
                str(bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_SERVER_SETTINGS.format(port=self.layout.pg_port, log_dir=self.log_dir))

    def start(self, timeout: float = 60.0) -> bool:
        """Start the cluster unless it already runs; return whether it was started now."""
        if self.running():
            return False
        # A server started elsewhere (infra/docker-compose.yml) names its superuser's password: keep it, once.
        adopted = os.environ.get("RENKOU_PG_SUPERUSER_PASSWORD")
        if adopted and stored_password(self.layout.state_dir, SUPERUSER) is None:
            save_password(self.layout.state_dir, SUPERUSER, adopted)
        if port_open(self.layout.pg_port) and asyncio.run(self._create_database()):
            return False  # a server we did not start (docker compose, a shared one) already serves: use it
        if port_open(self.layout.pg_port):
            raise InfraError(
                f"port {self.layout.pg_port} is already in use by a process this stack did not start; "
                "stop it or point RENKOU_DATABASE_URL at another port"
            )
        self._init()
        self._run(
            str(bin_dir() / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(self.log_dir / "startup.log"),
            "-o",
            f"-p {self.layout.pg_port}",
        )
        deadline = time.monotonic() + timeout
        while not asyncio.run(self._create_database()):
            if time.monotonic() > deadline:
                raise InfraError(f"PostgreSQL did not accept connections within {timeout:.0f}s; see {self.log_dir}")
            time.sleep(0.5)
        return True

    async def _create_database(self) -> bool:
        """The login roles and the stack's database, as the superuser; False while the server does not answer."""
        import asyncpg

        password = stored_password(self.layout.state_dir, SUPERUSER)
        if password is None:
            return False  # not our cluster, or not initialised yet
        try:
            conn = await asyncpg.connect(
                host="127.0.0.1",
                port=self.layout.pg_port,
                user=SUPERUSER,
                password=password,
                database="postgres",
                timeout=5,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            await ensure_roles(conn, self.layout.state_dir)
            await create_database(conn, self.layout.pg_database)
        finally:
            await conn.close()
        return True

    def stop(self) -> bool:
        """Stop the cluster if it runs; return whether anything was stopped."""
        if not self.running():
            return False
        self._run(str(bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
        return True
