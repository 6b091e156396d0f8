"""Endpoints of the local stack, derived from the same settings the services read."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from services.db.dsn import asyncpg_dsn
from services.infra.process import InfraError
from services.settings import Settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class StackLayout:
    """Where one local stack keeps its state and which ports it listens on."""

    state_dir: Path
    kafka_port: int
    controller_port: int
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str
    kafka_tls: bool = False
    kafka_brokers: int = 1
    """Brokers of the local Kafka: 1, or a cluster of 3 on one machine (each a KRaft controller too)."""
    pg_standby: bool = False
    """A hot standby of PostgreSQL by synchronous streaming replication, on the next port (``pg_port + 1``)."""

    @property
    def pg_standby_port(self) -> int:
        return self.pg_port + 1

    @property
    def pg_hosts(self) -> str:
        """The servers a client tries in turn (``?host=…&host=…``), keeping to the one that takes writes."""
        ports = [self.pg_port, self.pg_standby_port] if self.pg_standby else [self.pg_port]
        query = "&".join(f"host=127.0.0.1:{port}" for port in ports)
        return f"{query}&target_session_attrs=read-write" if self.pg_standby else query

    def broker_ports(self, node: int) -> tuple[int, int]:
        """Client and controller port of broker ``node`` (1-based): node 1 on the stack's own ports, each next one
        two ports further (9092/9093, 9094/9095, 9096/9097)."""
        step = 2 * (node - 1)
        return self.kafka_port + step, self.controller_port + step

    @property
    def kafka_bootstrap(self) -> str:
        """Every broker's client address: a client that starts while one is down still finds the cluster."""
        return ",".join(f"127.0.0.1:{self.broker_ports(n)[0]}" for n in range(1, self.kafka_brokers + 1))

    @property
    def database_url(self) -> str:
        """The stack's database as the owner role (migrations); services swap in their own role (db.roles)."""
        from services.db.roles import OWNER, stored_password

        password = stored_password(self.state_dir, OWNER) or self.pg_password
        if self.pg_standby:
            # Both servers; a client connects to whichever takes writes (the primary, or the standby promoted).
            return f"postgresql+asyncpg://{OWNER}:{password}@/{self.pg_database}?{self.pg_hosts}"
        return f"postgresql+asyncpg://{OWNER}:{password}@127.0.0.1:{self.pg_port}/{self.pg_database}"

    def superuser_url(self, database: str = "postgres") -> str:
        """The bootstrap superuser's URL (creating roles and databases; never a service's)."""
        from services.db.roles import SUPERUSER, stored_password

        password = stored_password(self.state_dir, SUPERUSER) or ""
        if self.pg_standby:
            return f"postgresql+asyncpg://{SUPERUSER}:{password}@/{database}?{self.pg_hosts}"
        return f"postgresql+asyncpg://{SUPERUSER}:{password}@127.0.0.1:{self.pg_port}/{database}"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, kafka_brokers: int | None = None, pg_standby: bool | None = None
    ) -> StackLayout:
        """The stack ``settings`` describe. Its number of brokers is the one it was created with (kept in its state
        folder), else ``kafka_brokers``, else 1; asking for another number than an existing stack has is refused."""
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        if host not in _LOOPBACK or not port.isdigit():
            raise InfraError(
                f"RENKOU_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} is not a loopback host:port; the local "
                "launcher only starts servers on 127.0.0.1"
            )
        url = urlsplit(asyncpg_dsn(settings.database_url.get_secret_value()))
        userinfo, _, hosts = url.netloc.rpartition("@")
        first_host, _, first_port = hosts.split(",")[0].rpartition(":")
        if first_host not in _LOOPBACK or not first_port.isdigit():
            raise InfraError("RENKOU_DATABASE_URL must point at 127.0.0.1:<port> for the local launcher")
        user, _, password = userinfo.partition(":")
        standby = (settings.state_dir / STANDBY_FILE).exists() or bool(pg_standby)
        stored = stored_broker_count(settings.state_dir)
        if stored is not None and kafka_brokers is not None and stored != kafka_brokers:
            raise InfraError(
                f"this stack's Kafka was created with {stored} broker(s), not {kafka_brokers}; stop it and remove "
                f"{settings.state_dir} (make clean) to start another cluster"
            )
        brokers = stored or kafka_brokers or 1
        if brokers not in (1, 3):
            raise InfraError(f"--kafka-brokers is 1 or 3 (a quorum of three controllers), got {brokers}")
        return cls(
            state_dir=settings.state_dir,
            kafka_brokers=brokers,
            kafka_port=int(port),
            controller_port=int(port) + 1,
            pg_port=int(first_port),
            pg_user=unquote(user) or "renkou",
            pg_password=password or "renkou",  # as it stands in the URL: put back into URLs as it is
            pg_database=url.path.lstrip("/") or "renkou",
            kafka_tls=settings.kafka_tls,
            pg_standby=standby,
        )


STANDBY_FILE = "postgres-standby/configured"
"""Under a stack's state folder: present once the stack has a PostgreSQL standby (``renkou up --pg-standby``)."""

BROKERS_FILE = "kafka/brokers"
"""Under a stack's state folder: how many brokers its Kafka was formatted with."""


def stored_broker_count(state_dir: Path) -> int | None:
    """The number of brokers the stack in ``state_dir`` was created with (None before its first start)."""
    path = state_dir / BROKERS_FILE
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def follow_local_stack(settings: Settings) -> Settings:
    """``settings`` naming every server of the local stack in its state folder: each Kafka broker, and both
    PostgreSQL servers when there is a standby (with the credentials the settings' URL carries: each process puts
    its own role's in). A process started before a standby existed, or the CLI, so follows a failover and a
    broker that is down. Not a local stack (not loopback, nothing stored): ``settings`` unchanged."""
    try:
        layout = StackLayout.from_settings(settings)
    except InfraError:
        return settings
    update: dict[str, Any] = {}
    if layout.kafka_brokers > 1:
        update["kafka_bootstrap"] = layout.kafka_bootstrap
    if layout.pg_standby:
        userinfo = urlsplit(asyncpg_dsn(settings.database_url.get_secret_value())).netloc.rpartition("@")[0]
        url = f"postgresql+asyncpg://{userinfo}@/{layout.pg_database}?{layout.pg_hosts}"
        update["database_url"] = SecretStr(url)
        if settings.read_database_url is None:
            # Reads (with the access log on Kafka) go to whichever server is a standby, the primary when none is.
            reads = url.replace("target_session_attrs=read-write", "target_session_attrs=prefer-standby")
            update["read_database_url"] = SecretStr(reads)
    return settings.model_copy(update=update) if update else settings


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (an IPv4 or IPv6 address)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_EPHEMERAL_RANGE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port(count: int = 1) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that a server can listen on right now (for the
    servers tests and benchmarks start), chosen below the kernel's ephemeral range: a port of that range that is
    free now may become the source port of an outgoing connection (a Kafka client's, say) before the server binds
    it, and the server then fails with "address already in use"."""
    low = _ephemeral_low()
    lowest, highest = max(1024, low - 12000), low - count  # so that first + count - 1 < low
    if highest < lowest:
        raise InfraError(f"the kernel's ephemeral ports start at {low}: no room below them for test servers")
    choices = random.Random()
    for _ in range(200):
        first = choices.randint(lowest, highest)
        if all(_bindable(first + i) for i in range(count)):
            return first
    raise InfraError(f"no {count} consecutive free TCP ports below {low} on 127.0.0.1")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default, 32768, where it cannot be read)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    """Whether a socket can be bound to ``127.0.0.1:port`` now: no listener, and no connection using it."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
