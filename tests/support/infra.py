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


@contextmanager
def provide() -> Iterator[Endpoints]:
    """Real Kafka and PostgreSQL endpoints for the test session; stops only what it started."""
    mode = choose_mode()
    if mode == "env":
        bootstrap = os.environ["RENKOU_TEST_KAFKA_BOOTSTRAP"]
        yield Endpoints(
            mode, bootstrap, os.environ["RENKOU_TEST_DATABASE_URL"], f"explicit endpoints (Kafka {bootstrap})"
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
                pg.get_connection_url(),
                "testcontainers (apache/kafka:4.1.1, postgres:15)",
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
            )
        finally:
            if started and not os.environ.get("RENKOU_TEST_KEEP_STACK"):
                stack.down()
