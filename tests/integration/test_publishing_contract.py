"""One contract, three ways a department publishes: the SDK's ``Publisher`` straight to Kafka, the gateway through
its client (``GatewayClient``), and the transactional ``Outbox`` with its ``OutboxRelay``.

Each takes the same events, twice, and must leave on the real broker: every event on its department's topic, keyed
by its citizen, in canonical form; each citizen's events, at their first delivery, in the order they were
published; and, after the projector has read the topic, every event applied once, in that order. Where the three
differ is said, and checked, too: whether a repeat reaches the log at all. The gateway answers a repeat with the
original coordinates and the outbox keeps the row it has, so neither appends it; the SDK appends it, and the
projector drops it by its ``event_id``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Final

import asyncpg
import pytest

from events import Event, Payload, parse_event, topic_for
from services.db.dsn import asyncpg_dsn
from services.gateway.auth import issue_token
from services.kafka.auth import demo_department_principal, stored_credentials
from services.publisher import Outbox, OutboxRelay, Publisher
from services.publisher.gateway_client import GatewayClient
from services.simulator import simulate
from tests.support.gateway import BASE_URL, running_gateway
from tests.support.infra import Endpoints
from tests.support.projector import read_topic, settings_for
from tests.support.publishing import assert_projected_once, first_deliveries, published_order

pytestmark = pytest.mark.integration

DEPARTMENT: Final = "social_security"

Publish = Callable[[Sequence[Event[Payload]], bool], Awaitable[None]]
"""Publish events; the flag says whether each was published before (what the way answers for a repeat)."""


@dataclass(frozen=True)
class Way:
    name: str
    appends_repeats: bool
    """Whether publishing an event again appends it to the log again."""


WAYS = [Way("sdk", appends_repeats=True), Way("gateway", appends_repeats=False), Way("outbox", appends_repeats=False)]


@asynccontextmanager
async def publishing(way: Way, infra: Endpoints, namespace: str, database_url: str) -> AsyncIterator[Publish]:
    """A department's way of publishing, set up against the test's topics and database."""
    credentials = stored_credentials(infra.state_dir, demo_department_principal(DEPARTMENT))
    if way.name == "sdk":
        async with Publisher(infra.kafka_bootstrap, namespace=namespace, credentials=credentials) as publisher:

            async def sdk(events: Sequence[Event[Payload]], again: bool) -> None:
                await publisher.publish_many(events)

            yield sdk
    elif way.name == "gateway":
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            token = await issue_token(conn, DEPARTMENT, "publishing contract")
        finally:
            await conn.close()
        settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
        async with (
            running_gateway(settings) as transport,
            GatewayClient(BASE_URL, {DEPARTMENT: token}, transport=transport) as client,
        ):
            first: dict[object, tuple[object, object, object]] = {}

            async def gateway(events: Sequence[Event[Payload]], again: bool) -> None:
                results = await client.publish_batch(DEPARTMENT, [e.canonical_bytes() for e in events])
                # Accepted (202) the first time; a repeat is 200 with where the first one is in the log.
                assert [r["status"] for r in results] == [200 if again else 202] * len(events), results
                for r in results:
                    where = (r["topic"], r["partition"], r["offset"])
                    assert first.setdefault(r["event_id"], where) == where, r

            yield gateway
    else:
        outbox = Outbox("outbox", schema="dept")
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await conn.execute("CREATE SCHEMA dept")
            await outbox.create(conn)
            async with Publisher(infra.kafka_bootstrap, namespace=namespace, credentials=credentials) as publisher:
                relay = OutboxRelay(outbox, publisher, batch_size=40)

                async def through_outbox(events: Sequence[Event[Payload]], again: bool) -> None:
                    async with conn.transaction():  # the department's change and its events, one transaction
                        await outbox.add_many(conn, events)
                    while await relay.relay_once(conn):
                        pass

                yield through_outbox
        finally:
            await conn.close()


def _events(residents: int, limit: int) -> list[Event[Payload]]:
    """Simulated events of one department, in the simulator's (per-citizen chronological) order."""
    wanted = (e for e in simulate(residents, seed=11) if e["source"]["department"] == DEPARTMENT)
    return [parse_event(e) for e in islice(wanted, limit)]


@pytest.mark.parametrize("way", WAYS, ids=lambda w: w.name)
async def test_a_way_of_publishing_keeps_the_contract(
    way: Way, infra: Endpoints, namespace: str, database_url: str
) -> None:
    events = _events(30, 400)
    assert len(events) == 400
    repeated = events[100:300]  # again: a department retrying what it is unsure of
    async with publishing(way, infra, namespace, database_url) as publish:
        await publish(events[:250], False)
        await publish(events[250:], False)
        await publish(repeated, True)

    records = await read_topic(infra.kafka_bootstrap, topic_for(DEPARTMENT, namespace))
    by_id = {str(e.event_id): e for e in events}
    for record in records:
        event = by_id[json.loads(record.value)["event_id"]]
        assert record.key == event.citizen_id.encode()
        assert record.value == event.canonical_bytes()
    assert {json.loads(r.value)["event_id"] for r in records} == set(by_id)  # nothing lost
    assert first_deliveries(records) == published_order(events)  # nothing reordered
    assert len(records) == len(events) + (len(repeated) if way.appends_repeats else 0)
    for department in ("public_security", "education", "health"):  # and nothing anywhere else
        assert not await read_topic(infra.kafka_bootstrap, topic_for(department, namespace))
    await assert_projected_once(infra, database_url, namespace, events)  # each applied once
