"""A project-local PostgreSQL cluster: ``initdb`` into the stack's folder, ``pg_ctl`` to start and stop it; and,
with ``renkou up --pg-standby`` (CONTRACT §13), a hot standby made with ``pg_basebackup`` that streams the
primary's WAL through a replication slot, synchronously (``synchronous_standby_names``): a commit the primary
acknowledges is on the standby too. ``renkou failover`` fences the primary and promotes the standby; clients
name both servers with ``target_session_attrs=read-write`` and so follow the promotion on their next connection.

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
from typing import TYPE_CHECKING, Final

from services.db.roles import (
    SUPERUSER,
    create_database,
    ensure_login,
    ensure_password,
    ensure_roles,
    save_password,
    stored_password,
)
from services.infra.ports import STANDBY_FILE, StackLayout, port_open
from services.infra.process import InfraError, alive
from services.kafka.auth import write_private

if TYPE_CHECKING:
    import asyncpg

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


_LOG_TAIL_BYTES: Final = 64 * 1024
"""How much of the end of a log ``PostgresServer.log_tail`` reads."""


class PostgresServer:
    """The database cluster of one stack: its files live under ``<state_dir>/postgres``."""

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.port = layout.pg_port
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
        return self.pid() is not None

    def pid(self) -> int | None:
        """The postmaster's PID while it lives (a postmaster killed and not yet reaped is a zombie: not running)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

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
            conf.write(_SERVER_SETTINGS.format(port=self.port, log_dir=self.log_dir))

    def start(self, timeout: float = 60.0) -> bool:
        """Start the cluster unless it already runs; return whether it was started now."""
        if self.running():
            return False
        if (self.layout.state_dir / PROMOTED_FILE).exists():
            raise InfraError(
                f"the standby was promoted (renkou failover): the old primary in {self.data_dir} is fenced and "
                f"is not started; the data lives on in {self.layout.state_dir / 'postgres-standby'}, the primary now"
            )
        # A server started elsewhere (infra/docker-compose.yml) names its superuser's password: keep it, once.
        adopted = os.environ.get("RENKOU_PG_SUPERUSER_PASSWORD")
        if adopted and stored_password(self.layout.state_dir, SUPERUSER) is None:
            save_password(self.layout.state_dir, SUPERUSER, adopted)
        if port_open(self.port) and asyncio.run(self._create_database()):
            return False  # a server we did not start (docker compose, a shared one) already serves: use it
        if port_open(self.port):
            raise InfraError(
                f"port {self.port} is already in use by a process this stack did not start; "
                "stop it or point RENKOU_DATABASE_URL at another port"
            )
        self._init()
        self._pg_ctl_start(timeout)
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
            # Roles and the database are made again from the stored secrets on every start: they need not wait
            # for a standby that may not be up yet (the services' commits do wait for it).
            conn = await self._superuser(self.port, synchronous_commit="local")
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            await ensure_roles(conn, self.layout.state_dir)
            await ensure_replicator(conn, self.layout.state_dir)
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

    async def _superuser(self, port: int, **server_settings: str) -> asyncpg.Connection:
        """A connection as the bootstrap superuser to the stack's server on ``port`` (database ``postgres``)."""
        import asyncpg

        return await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=stored_password(self.layout.state_dir, SUPERUSER),
            database="postgres",
            timeout=5,
            server_settings=server_settings or None,
        )

    def _pg_ctl_start(self, timeout: float) -> None:
        """``pg_ctl start`` on this server's folder and port, waiting until it accepts connections. A server that
        does not come up is reported with the end of its logs (``pg_ctl`` itself only says to look there)."""
        try:
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
                f"-p {self.port}",
            )
        except InfraError as exc:
            raise InfraError(f"{exc}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` of each of the server's logs (the startup log, the server's own), each headed by its
        path; empty for a log that does not exist."""
        parts = []
        for log in (self.log_dir / "startup.log", self.log_dir / "postgresql.log"):
            if log.is_file():
                with log.open("rb") as f:  # a long-lived server's log may be large: only its end is read
                    f.seek(max(0, log.stat().st_size - _LOG_TAIL_BYTES))
                    tail = f.read().decode(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop_now(self) -> bool:
        """Stop the cluster at once (``-m immediate``: no checkpoint), as a fence before a failover."""
        if not self.running():
            return False
        self._run(str(bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "60")
        return True

    def fence(self) -> bool:
        """Stop it at once if it runs, and mark its data folder a standby (``standby.signal``): started again by
        anyone (``pg_ctl`` too), it comes up read-only and no client looking for writes picks it. Returns whether
        it was running."""
        stopped = self.stop_now()
        if (self.data_dir / "PG_VERSION").exists():
            signal = self.data_dir / "standby.signal"
            signal.touch()
            self._chown(signal)
        return stopped


REPLICATOR = "renkou_replicator"
"""The standby's login on the primary: REPLICATION and nothing else (no table, no database of its own)."""
STANDBY_NAME = "renkou_standby"
"""The standby's ``application_name``, named in the primary's ``synchronous_standby_names``, and its slot."""
PROMOTED_FILE = "postgres-standby/promoted"
"""Under a stack's state folder: present once ``renkou failover`` promoted the standby."""


async def ensure_replicator(conn: asyncpg.Connection, state_dir: Path) -> None:
    """The replication login (as the superuser on ``conn``), with its stored password."""
    await ensure_login(
        conn, REPLICATOR, ensure_password(state_dir, REPLICATOR), "REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE"
    )


class PostgresStandby(PostgresServer):
    """The hot standby of a stack's primary: its files live under ``<state_dir>/postgres-standby``."""

    def __init__(self, layout: StackLayout) -> None:
        super().__init__(layout)
        self.port = layout.pg_standby_port
        self.home = layout.state_dir / "postgres-standby"
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.passfile = self.home / "replication.pgpass"

    @property
    def promoted(self) -> bool:
        return (self.layout.state_dir / PROMOTED_FILE).exists()

    def start(self, timeout: float = 120.0) -> bool:
        """Make the standby (once, from a base backup of the running primary) and start it; return whether it
        was started now. The primary then waits for it on every commit."""
        if self.running():
            return False
        if port_open(self.port):
            raise InfraError(f"port {self.port} for the PostgreSQL standby is taken by a process we did not start")
        if not (self.data_dir / "PG_VERSION").exists():
            self._base_backup()
        self._pg_ctl_start(timeout)
        if not self.promoted:
            asyncio.run(self._wait_streaming(timeout))
        return True

    def _base_backup(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.home, self.log_dir):
            self._chown(directory)
        password = ensure_password(self.layout.state_dir, REPLICATOR)
        write_private(self.passfile, f"127.0.0.1:{self.layout.pg_port}:*:{REPLICATOR}:{password}\n")
        self._chown(self.passfile)
        self._run(
            "env",
            f"PGPASSFILE={self.passfile}",
            str(bin_dir() / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.layout.pg_port),
            "-U",
            REPLICATOR,
            "-D",
            str(self.data_dir),
            "-X",
            "stream",
            "--checkpoint=fast",  # not a spread checkpoint: the backup starts at once
            "-C",
            "-S",
            STANDBY_NAME,
            "-R",
            "-w",
        )
        conninfo = (
            f"host=127.0.0.1 port={self.layout.pg_port} user={REPLICATOR} passfile={self.passfile} "
            f"application_name={STANDBY_NAME}"
        )
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = '{conninfo}'\nprimary_slot_name = '{STANDBY_NAME}'\n")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"# --- the standby's own ---\nport = {self.port}\nlog_directory = '{self.log_dir}'\n")

    async def _wait_streaming(self, wait_s: float) -> None:
        """Until the primary sees the standby streaming; then make it synchronous (every commit waits for it)."""
        conn = await self._superuser(self.layout.pg_port)
        try:
            deadline = time.monotonic() + wait_s
            while not await conn.fetchval(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
                STANDBY_NAME,
            ):
                if time.monotonic() > deadline:
                    raise InfraError(f"the standby did not stream from the primary within {wait_s:.0f}s")
                await asyncio.sleep(0.3)
            await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
            # A standby away for long must not fill the primary's disk with the WAL its slot holds.
            await conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '20GB'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    def promote(self) -> None:
        """Promote the standby to primary (``pg_ctl promote``): it takes writes, waiting for no standby. The
        replication slot it streamed through stays on the fenced old primary, which no longer runs."""
        self._run(str(bin_dir() / "pg_ctl"), "promote", "-D", str(self.data_dir), "-w", "-t", "60")
        (self.layout.state_dir / PROMOTED_FILE).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        asyncio.run(self._no_synchronous_standby(self.port))  # the promoted server

    def release(self) -> bool:
        """The standby is lost (its disk, its machine): the primary stops waiting for it, so that writes go on,
        each on the primary alone until the standby streams again (its next start makes it synchronous once
        more). Return whether the primary was waiting for it."""
        return asyncio.run(self._release())

    async def _release(self) -> bool:
        conn = await self._superuser(self.layout.pg_port)
        try:
            waiting = bool(await conn.fetchval("SHOW synchronous_standby_names"))
            streaming = await conn.fetchval(
                "SELECT state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
            )
        finally:
            await conn.close()
        if streaming is not None or self.running():
            # Released while it still streams, it would go on serving reads (and grants) the primary no longer
            # waits for: a revocation could pass it by.
            raise InfraError(f"the standby is not lost: it runs or streams ({streaming or 'running'}); stop it first")
        if waiting:
            await self._no_synchronous_standby(self.layout.pg_port)
        return waiting

    async def _no_synchronous_standby(self, port: int) -> None:
        conn = await self._superuser(port)
        try:
            await conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def replication(self) -> str:
        """How the primary sees the standby: ``streaming, sync`` (or why not)."""
        import asyncpg

        if self.promoted:
            return "promoted: the primary now"
        try:
            conn = await self._superuser(self.layout.pg_port)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return "primary unreachable"
        try:
            row = await conn.fetchrow(
                "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
            )
            waiting = bool(await conn.fetchval("SHOW synchronous_standby_names"))
        finally:
            await conn.close()
        if row:
            return f"{row['state']}, {row['sync_state']}"
        if waiting:
            return "not connected: writes wait for it (renkou infra standby-lost to go on without it)"
        return "not connected to the primary"


def configure_standby(state_dir: Path) -> None:
    """Mark the stack as one with a standby (``renkou up --pg-standby``)."""
    path = state_dir / STANDBY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("synchronous\n")
