"""What the tests of the ways a department publishes share: how a log is read as a deduplicating consumer reads it,
the order a department published in, and the projection's proof that each event was applied once."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import asyncpg

from events import Event, Payload
from services.db.dsn import asyncpg_dsn
from tests.support.infra import Endpoints
from tests.support.projector import running_projector, settings_for, wait_caught_up


def first_deliveries(records: list[Any]) -> dict[str, list[str]]:
    """Per citizen, event IDs in log order, each at its first delivery (what a deduplicating consumer applies)."""
    seen: set[str] = set()
    order: dict[str, list[str]] = defaultdict(list)
    for record in records:
        event_id = json.loads(record.value)["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            order[record.key.decode()].append(event_id)
    return order


def published_order(events: list[Event[Payload]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for event in events:
        order[event.citizen_id].append(str(event.event_id))
    return order


async def assert_projected_once(
    infra: Endpoints, database_url: str, namespace: str, events: list[Event[Payload]]
) -> None:
    """The projector applies each event once, in the department's order, however often it was delivered."""
    settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
    async with running_projector(settings):
        await wait_caught_up(settings)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT citizen_id, event_id FROM projection.event_archive ORDER BY citizen_id, department, chain_seq"
        )
    finally:
        await conn.close()
    archived: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        archived[row["citizen_id"]].append(str(row["event_id"]))
    assert archived == published_order(events)
