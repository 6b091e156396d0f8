"""Fixtures giving integration tests a real Kafka broker and a real PostgreSQL.

Each test gets topics of its own (a unique namespace prefixed to the contract's names) and, where it asks
for one, a freshly migrated database of its own, so tests never see each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.db.migrate import upgrade
from services.infra.topics import ensure_topics, load_topics
from tests.support.infra import Endpoints, provide

TEST_PARTITIONS = 4


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    with provide() as endpoints:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nintegration infrastructure: {endpoints.description}")
        yield endpoints


@pytest.fixture
async def namespace(infra: Endpoints) -> str:
    """A fresh set of the contract's topics, prefixed by a unique namespace."""
    ns = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(infra.kafka_bootstrap, load_topics(namespace=ns, partitions=TEST_PARTITIONS))
    return ns


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg2://", "postgresql://"
    )


@pytest.fixture
async def database_url(infra: Endpoints) -> AsyncIterator[str]:
    """A new, fully migrated database for one test; dropped afterwards."""
    name = f"renkou_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(_with_database(infra.database_url, "postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(infra.database_url, name).replace("postgresql+psycopg2://", "postgresql+asyncpg://")
    await upgrade(url)
    yield url
    admin = await asyncpg.connect(_asyncpg_dsn(_with_database(infra.database_url, "postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
