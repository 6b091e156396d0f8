"""Fixtures giving integration tests a real Kafka broker and a real PostgreSQL.

Each test gets topics of its own (a unique namespace prefixed to the contract's names) and, where it asks
for one, a freshly migrated database of its own, so tests never see each other's records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.db.roles import create_database
from services.infra.topics import delete_topics_with_prefixes, ensure_topics, load_topics
from services.kafka_principals import STACK_PRINCIPALS, grant_role, revoke_roles
from tests.support.infra import USED_INFRASTRUCTURE, Endpoints, provide

TEST_PARTITIONS = 4


_NAMESPACES: set[str] = set()
"""The topic namespaces this session created (deleted when it ends)."""


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    with provide() as endpoints:
        request.config.stash[USED_INFRASTRUCTURE] = endpoints.description
        yield endpoints
        # A broker kept between sessions (or shared, with explicit endpoints) must not pile up every session's
        # topics: tens of thousands of partitions make a single broker markedly slower.
        if _NAMESPACES:
            asyncio.run(
                delete_topics_with_prefixes(endpoints.kafka_bootstrap, sorted(_NAMESPACES), endpoints.kafka_admin)
            )
            if endpoints.secured:
                for ns in sorted(_NAMESPACES):
                    revoke_roles(endpoints.kafka_bootstrap, endpoints.kafka_admin, STACK_PRINCIPALS, ns)


async def create_namespace(infra: Endpoints) -> str:
    """A fresh set of the contract's topics, prefixed by a unique namespace."""
    ns = f"t{uuid.uuid4().hex[:10]}."
    _NAMESPACES.add(ns)
    await ensure_topics(infra.kafka_bootstrap, load_topics(namespace=ns, partitions=TEST_PARTITIONS), infra.kafka_admin)
    if infra.secured:
        # The stack's principals get their roles over this test's topics, and nothing else.
        await asyncio.to_thread(grant_role, infra.kafka_bootstrap, infra.kafka_admin, STACK_PRINCIPALS, ns)
    return ns


@pytest.fixture
async def namespace(infra: Endpoints) -> str:
    return await create_namespace(infra)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class Databases:
    """Creates freshly migrated databases for one test and drops them afterwards."""

    def __init__(self, infra: Endpoints) -> None:
        self.infra = infra
        self.names: list[str] = []

    async def create(self, revision: str = "head") -> str:
        """A new database owned by the owner role, migrated to ``revision`` (the newest by default); returns the
        owner's URL of it."""
        name = f"renkou_test_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(asyncpg_dsn(_with_database(self.infra.superuser_url, "postgres")))
        try:
            await create_database(admin, name)
        finally:
            await admin.close()
        self.names.append(name)
        url = _with_database(self.infra.database_url, name).replace("postgresql+psycopg2://", "postgresql+asyncpg://")
        await upgrade(url, revision)
        return url

    async def drop_all(self) -> None:
        admin = await asyncpg.connect(asyncpg_dsn(_with_database(self.infra.superuser_url, "postgres")))
        try:
            for name in self.names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def databases(infra: Endpoints) -> AsyncIterator[Databases]:
    dbs = Databases(infra)
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def database_url(databases: Databases) -> str:
    """A new, fully migrated database for one test; dropped afterwards."""
    return await databases.create()
