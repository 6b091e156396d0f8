"""Which real Kafka and PostgreSQL the tests use, in this order of preference:

1. explicit endpoints: ``RENKOU_TEST_KAFKA_BOOTSTRAP`` and ``RENKOU_TEST_DATABASE_URL``;
2. testcontainers, when a Docker engine answers;
3. the project's own local launchers (``services.infra``), on ports of their own (19092, 15433) and a state
   folder of their own (``.local/test-stack``), so a developer's running ``make run`` stack is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.infra.ports import StackLayout
from services.infra.stack import LocalStack
from services.kafka.auth import ADMIN, KafkaCredentials, bootstrap_servers, stored_credentials
from services.settings import Settings, project_root

TEST_STATE_DIR = project_root() / ".local" / "test-stack"
# The tests' audit-anchor signing key (CONTRACT §10): in the test stack's folder, never a developer stack's key.
TEST_ANCHOR_KEY = TEST_STATE_DIR / "secrets" / "audit-anchor.ed25519.pem"
# Overridable so that two checkouts on one machine (a fresh clone beside a working tree) never share a stack.
TEST_KAFKA = f"127.0.0.1:{os.environ.get('RENKOU_TEST_KAFKA_PORT', '19092')}"
TEST_DATABASE = f"postgresql+asyncpg://renkou:renkou@127.0.0.1:{os.environ.get('RENKOU_TEST_PG_PORT', '15433')}/renkou"


USED_INFRASTRUCTURE = pytest.StashKey[str]()  # what the session really ran against, for the closing summary


@dataclass(frozen=True)
class Endpoints:
    mode: str
    kafka_bootstrap: str
    database_url: str
    description: str
    # Where the stack keeps its principals' secrets (services started by tests read theirs from here), and the
    # cluster's admin: None when the broker is not secured (testcontainers' plain broker).
    state_dir: Path = TEST_STATE_DIR
    kafka_admin: KafkaCredentials | None = None
    # PostgreSQL's superuser, for creating each test's database (``database_url`` is the owner role's: it runs
    # the migrations and the tests' own set-up; the services started by tests connect as their own roles).
    superuser_url: str = ""

    @property
    def secured(self) -> bool:
        return self.kafka_admin is not None


_CURRENT: list[Endpoints] = []


def current() -> Endpoints:
    """The endpoints of the running test session (for helpers that are handed a bootstrap string only)."""
    if not _CURRENT:
        raise RuntimeError("no test infrastructure is up (use the `infra` fixture)")
    return _CURRENT[-1]


def kafka_options(bootstrap: str | None = None, principal: str = ADMIN) -> dict[str, object]:
    """aiokafka keyword arguments for a test's own client: the session's broker, as ``principal`` (the admin
    by default: tests set up and inspect; the services they start run as their own principals)."""
    endpoints = current()
    options: dict[str, object] = {"bootstrap_servers": bootstrap_servers(bootstrap or endpoints.kafka_bootstrap)}
    if endpoints.kafka_admin is not None:
        credentials = (
            endpoints.kafka_admin if principal == ADMIN else stored_credentials(endpoints.state_dir, principal)
        )
        if credentials is None:
            raise RuntimeError(f"no stored credentials for Kafka principal {principal}")
        options.update(credentials.aiokafka_options())
    return options


def docker_available() -> bool:
    if not (Path("/var/run/docker.sock").exists() or os.environ.get("DOCKER_HOST")):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def choose_mode() -> str:
    if os.environ.get("RENKOU_TEST_KAFKA_BOOTSTRAP") and os.environ.get("RENKOU_TEST_DATABASE_URL"):
        return "env"
    if os.environ.get("RENKOU_TEST_INFRA") == "local":
        return "local"
    return "testcontainers" if docker_available() else "local"


def test_layout() -> StackLayout:
    settings = Settings(kafka_bootstrap=TEST_KAFKA, database_url=SecretStr(TEST_DATABASE), state_dir=TEST_STATE_DIR)
    return StackLayout.from_settings(settings)


def _prepare_roles(superuser_url: str) -> str:
    """Create the login roles on a server given by its superuser's URL (their passwords under the test state
    folder) and return the owner role's URL for the same database."""
    import asyncio

    import asyncpg

    from services.db.dsn import asyncpg_dsn
    from services.db.roles import OWNER, ensure_roles, stored_password, with_credentials

    async def go() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(superuser_url))
        try:
            await ensure_roles(conn, TEST_STATE_DIR)
        finally:
            await conn.close()

    asyncio.run(go())
    return with_credentials(superuser_url, OWNER, stored_password(TEST_STATE_DIR, OWNER) or "")


@contextmanager
def provide() -> Iterator[Endpoints]:
    """Real Kafka and PostgreSQL endpoints for the test session; stops only what it started."""
    with _provide() as endpoints:
        _CURRENT.append(endpoints)
        try:
            yield endpoints
        finally:
            _CURRENT.remove(endpoints)


@contextmanager
def _provide() -> Iterator[Endpoints]:
    mode = choose_mode()
    if mode == "env":
        bootstrap = os.environ["RENKOU_TEST_KAFKA_BOOTSTRAP"]
        # A secured cluster names its admin principal; the fixtures create the service principals with it.
        admin = None
        if os.environ.get("RENKOU_TEST_KAFKA_ADMIN_USERNAME"):
            admin = KafkaCredentials(
                os.environ["RENKOU_TEST_KAFKA_ADMIN_USERNAME"], os.environ["RENKOU_TEST_KAFKA_ADMIN_PASSWORD"]
            )
            from services.kafka.principals import ensure_stack_principals

            ensure_stack_principals(bootstrap, admin, TEST_STATE_DIR)
        superuser = os.environ["RENKOU_TEST_DATABASE_URL"]
        yield Endpoints(
            mode,
            bootstrap,
            _prepare_roles(superuser),
            f"explicit endpoints (Kafka {bootstrap})",
            kafka_admin=admin,
            superuser_url=superuser,
        )
    elif mode == "testcontainers":
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
            PostgresContainer("postgres:15", driver="asyncpg") as pg,
        ):
            yield Endpoints(
                mode,
                kafka.get_bootstrap_server(),
                _prepare_roles(pg.get_connection_url()),
                "testcontainers (apache/kafka:4.1.1, postgres:15)",
                superuser_url=pg.get_connection_url(),
            )
    else:
        layout = test_layout()
        stack = LocalStack(layout)
        started = stack.kafka.pid() is None or not stack.postgres.running()
        stack.up()
        from services.infra.kafka import kafka_version
        from services.infra.postgres import server_version

        try:
            yield Endpoints(
                mode,
                layout.kafka_bootstrap,
                layout.database_url,
                f"local launchers (Kafka {kafka_version()} KRaft from Maven Central jars at "
                f"{layout.kafka_bootstrap}, "
                f"PostgreSQL {server_version()} at 127.0.0.1:{layout.pg_port})",
                state_dir=layout.state_dir,
                kafka_admin=stack.kafka.admin_credentials(),
                superuser_url=layout.superuser_url(layout.pg_database),
            )
        finally:
            if started and not os.environ.get("RENKOU_TEST_KEEP_STACK"):
                stack.down()
