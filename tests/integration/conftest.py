"""Fixtures giving integration tests a real Kafka broker and a real PostgreSQL.

Each test gets topics of its own (a unique namespace prefixed to the contract's names) and, where it asks
for one, a freshly migrated database of its own, so tests never see each other's records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from services.infra.topics import delete_topics_with_prefixes
from services.kafka.principals import STACK_PRINCIPALS, revoke_roles
from tests.support.infra import USED_INFRASTRUCTURE, Endpoints, provide
from tests.support.stack import NAMESPACES, Databases, create_namespace


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    with provide() as endpoints:
        request.config.stash[USED_INFRASTRUCTURE] = endpoints.description
        yield endpoints
        # A broker kept between sessions (or shared, with explicit endpoints) must not pile up every session's
        # topics: tens of thousands of partitions make a single broker markedly slower.
        if NAMESPACES:
            asyncio.run(
                delete_topics_with_prefixes(endpoints.kafka_bootstrap, sorted(NAMESPACES), endpoints.kafka_admin)
            )
            if endpoints.secured:
                for ns in sorted(NAMESPACES):
                    revoke_roles(endpoints.kafka_bootstrap, endpoints.kafka_admin, STACK_PRINCIPALS, ns)


@pytest.fixture
async def namespace(infra: Endpoints) -> str:
    return await create_namespace(infra)


@pytest.fixture
async def databases(infra: Endpoints) -> AsyncIterator[Databases]:
    dbs = Databases(infra)
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def database_url(databases: Databases) -> str:
    """A new, fully migrated database for one test; dropped afterwards."""
    return await databases.create()
