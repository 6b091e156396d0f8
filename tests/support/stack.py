"""The test stack's namespaces and databases: topics of a test's own on the real broker, freshly migrated databases
of its own on the real PostgreSQL. The integration fixtures (``tests/integration/conftest.py``) and the tests that
need more than one of either use these."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from services.db.roles import create_database
from services.infra.topics import ensure_topics, load_topics
from services.kafka.principals import STACK_PRINCIPALS, grant_role
from tests.support.infra import Endpoints

TEST_PARTITIONS = 4


NAMESPACES: set[str] = set()
"""The topic namespaces this session created (deleted when it ends)."""


async def create_namespace(infra: Endpoints) -> str:
    """A fresh set of the contract's topics, prefixed by a unique namespace."""
    ns = f"t{uuid.uuid4().hex[:10]}."
    NAMESPACES.add(ns)
    await ensure_topics(infra.kafka_bootstrap, load_topics(namespace=ns, partitions=TEST_PARTITIONS), infra.kafka_admin)
    if infra.secured:
        # The stack's principals get their roles over this test's topics, and nothing else.
        await asyncio.to_thread(grant_role, infra.kafka_bootstrap, infra.kafka_admin, STACK_PRINCIPALS, ns)
    return ns


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
