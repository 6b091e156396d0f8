"""The transactional outbox: a department writes its own row and the event in one database transaction.

::

    outbox = Outbox("renkou_outbox", schema="registry")      # a table in the department's own database
    await outbox.create(conn)                                 # once (idempotent DDL)
    async with conn.transaction():
        await conn.execute("UPDATE registry.people SET ... WHERE citizen_id = $1", cid)
        await outbox.add(conn, event)                         # same transaction: both or neither

``OutboxRelay`` (``services.publisher.relay``) publishes the committed rows to Kafka and marks them sent.

Order. Rows are published in ``id`` order. ``add`` first takes a transaction-scoped advisory lock on the citizen,
so two transactions that write events about the same citizen are serialised: the second draws its ``id`` only
after the first committed, and the relay (which reads committed rows in one snapshot) can never see a citizen's
later row without the earlier ones. Events of different citizens have no order to keep.

Locks. That lock costs one entry in PostgreSQL's lock table per distinct citizen of a transaction; a bulk load of
many thousands of citizens in one transaction needs ``max_locks_per_transaction`` raised, or smaller transactions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from projections.resident.tables import SCHEMA_NAME, quote

if TYPE_CHECKING:
    from events import Event, Payload

__all__ = ["Outbox", "OutboxConflict"]


class OutboxConflict(ValueError):  # noqa: N818 - reads as what happened: a conflict
    """An ``event_id`` already in the outbox with other content."""


class Outbox:
    """One outbox table (``schema.table``) in a department's database; the names are the department's choice."""

    def __init__(self, table: str = "renkou_outbox", *, schema: str = "public") -> None:
        for kind, name in (("table", table), ("schema", schema)):
            if not SCHEMA_NAME.fullmatch(name):
                raise ValueError(f"outbox {kind} name {name!r} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)")
        self.table = table
        self.schema = schema
        # The first key of the citizen locks: a number of its own per outbox table, stable across processes.
        self.lock_space = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "big", signed=True)

    @classmethod
    def named(cls, qualified: str) -> Outbox:
        """``Outbox.named("registry.renkou_outbox")`` (or just ``"renkou_outbox"`` in ``public``)."""
        schema, _, table = qualified.rpartition(".")
        return cls(table, schema=schema or "public")

    @property
    def name(self) -> str:
        """``schema.table``, each part quoted where SQL needs it (a reserved word such as ``user``)."""
        return f"{quote(self.schema)}.{quote(self.table)}"

    def ddl(self) -> list[str]:
        """The statements that create the outbox (idempotent)."""
        return [
            f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}",
            f"""CREATE TABLE IF NOT EXISTS {self.name} (
                id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_id        uuid        NOT NULL UNIQUE,
                event_type      text        NOT NULL,
                department      text        NOT NULL,
                citizen_id      text        NOT NULL,
                value           bytea       NOT NULL,
                created_at      timestamptz NOT NULL DEFAULT now(),
                sent_at         timestamptz,
                kafka_topic     text,
                kafka_partition integer,
                kafka_offset    bigint
            )""",
            f"CREATE INDEX IF NOT EXISTS {quote(self.table + '_unsent')} ON {self.name} (id) WHERE sent_at IS NULL",
        ]

    async def create(self, conn: asyncpg.Connection) -> None:
        """Create the outbox table if it does not exist."""
        async with conn.transaction():
            for statement in self.ddl():
                await conn.execute(statement)

    async def add(self, conn: asyncpg.Connection, event: Event[Payload]) -> int:
        """Put ``event`` in the outbox as part of the caller's open transaction; return its row id.

        Adding the same event again is a no-op (the same id comes back); another event under the same
        ``event_id`` raises ``OutboxConflict``.
        """
        return (await self.add_many(conn, [event]))[0]

    async def add_many(self, conn: asyncpg.Connection, events: Sequence[Event[Payload]]) -> list[int]:
        """``add`` for several events, in the given order (which is the order they will be published in)."""
        if not conn.is_in_transaction():
            raise RuntimeError(
                "Outbox.add must run inside the department's own transaction (async with conn.transaction(): ...)"
            )
        if not events:
            return []
        citizens = sorted({e.citizen_id for e in events})
        # Sorted, so that two transactions locking the same citizens cannot deadlock on the order.
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1::int, h) "
            "FROM (SELECT DISTINCT hashtext(c) AS h FROM unnest($2::text[]) AS c ORDER BY 1) AS s",
            self.lock_space,
            citizens,
        )
        values = [e.canonical_bytes() for e in events]
        ids: list[int] = []
        for event, value in zip(events, values, strict=True):
            row_id = await conn.fetchval(
                f"INSERT INTO {self.name} (event_id, event_type, department, citizen_id, value) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING id",
                event.event_id,
                event.event_type,
                event.department,
                event.citizen_id,
                value,
            )
            if row_id is None:
                row_id = await self._existing(conn, event, value)
            ids.append(int(row_id))
        return ids

    async def _existing(self, conn: asyncpg.Connection, event: Event[Payload], value: bytes) -> int:
        row = await conn.fetchrow(f"SELECT id, value FROM {self.name} WHERE event_id = $1", event.event_id)
        assert row is not None
        if bytes(row["value"]) != value:
            raise OutboxConflict(f"event_id {event.event_id} is already in {self.name} with other content")
        return int(row["id"])

    async def pending(self, conn: asyncpg.Connection) -> int:
        """How many rows wait to be published."""
        return int(await conn.fetchval(f"SELECT count(*) FROM {self.name} WHERE sent_at IS NULL"))
