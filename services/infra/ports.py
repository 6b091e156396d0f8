"""Endpoints of the local stack, derived from the same settings the services read."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        """The stack's database as the owner role (migrations); services swap in their own role (db.roles)."""
        from services.db.roles import OWNER, stored_password

        password = stored_password(self.state_dir, OWNER) or self.pg_password
        return f"postgresql+asyncpg://{OWNER}:{password}@127.0.0.1:{self.pg_port}/{self.pg_database}"

    def superuser_url(self, database: str = "postgres") -> str:
        """The bootstrap superuser's URL (creating roles and databases; never a service's)."""
        from services.db.roles import SUPERUSER, stored_password

        password = stored_password(self.state_dir, SUPERUSER) or ""
        return f"postgresql+asyncpg://{SUPERUSER}:{password}@127.0.0.1:{self.pg_port}/{database}"

    @classmethod
    def from_settings(cls, settings: Settings) -> StackLayout:
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        if host not in _LOOPBACK or not port.isdigit():
            raise InfraError(
                f"RENKOU_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} is not a loopback host:port; the local "
                "launcher only starts servers on 127.0.0.1"
            )
        url = urlsplit(settings.database_url.get_secret_value().replace("+asyncpg", ""))
        if url.hostname not in _LOOPBACK or url.port is None:
            raise InfraError("RENKOU_DATABASE_URL must point at 127.0.0.1:<port> for the local launcher")
        return cls(
            state_dir=settings.state_dir,
            kafka_port=int(port),
            controller_port=int(port) + 1,
            pg_port=url.port,
            pg_user=url.username or "renkou",
            pg_password=url.password or "renkou",
            pg_database=url.path.lstrip("/") or "renkou",
            kafka_tls=settings.kafka_tls,
        )


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers tests and benchmarks start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
