"""Verify a rebuild: the shadow, at exactly the live checkpoints, equals the live projection row by row.

How it stays correct while the live projector keeps ingesting — no pause of the live projector at all:

1. catch up: replay the shadow towards the live checkpoints until only a short stretch remains;
2. open one REPEATABLE READ transaction whose *first* statement reads the live checkpoints ``C``: its snapshot
   shows the live projection exactly at ``C`` (a batch commits its rows and its checkpoints together), however
   far the live projector moves on meanwhile;
3. inside that same transaction, project the shadow's last stretch up to exactly ``C`` (no one else writes the
   shadow: ``shadow_lock``), so the transaction sees the live schema at ``C`` from its snapshot and the shadow
   at ``C`` through its own writes;
4. compare, in SQL, table by table: a checksum per row over every column that must be equal (all but the
   bookkeeping times ``archived_at``, ``enqueued_at``, ``updated_at``, ``rejected_at``, ``redriven_at``),
   joined on the primary key; then fetch the first differing rows from both sides and name their columns.
   ``view_outbox`` (what the view relay still has to publish) is not compared.

When identical, the shadow is marked verified (a JSON ``COMMENT ON SCHEMA``), which ``swap`` requires.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from events import department_topics
from projections.resident.reads import read_checkpoints
from services.db import roles as db_roles
from services.operations.base import Positions, database, shorten, total
from services.operations.replay import (
    DEFAULT_BATCH,
    CatchUp,
    Progress,
    ReplayStats,
    catch_up,
    replay_consumer,
    shadow_lock,
    stretch_to,
    swap_guard,
)
from services.operations.schemas import (
    DEFAULT_SHADOW,
    LIVE,
    check_compatible,
    check_name,
    columns_of,
    complete_indexes,
    create_shadow,
    primary_key_of,
    schema_exists,
    tables_of,
    write_note,
)
from services.settings import Settings

IGNORED_COLUMNS = frozenset({"archived_at", "enqueued_at", "updated_at", "rejected_at", "redriven_at", "logged_at"})
"""Bookkeeping, not the fold: ``logged_at`` is the broker's stamp of the Kafka record (migration 0018), empty on
rows archived before it or from a topic the broker did not stamp, the same on a rebuild of rows after it."""
IGNORED_TABLES = frozenset({"view_outbox"})
_CITIZEN_COLUMNS = ("citizen_id", "child_citizen_id", "mother_citizen_id")


@dataclass(frozen=True)
class ColumnDifference:
    column: str
    live: Any
    shadow: Any


@dataclass(frozen=True)
class RowDifference:
    """One row that is not the same on both sides: changed, or present on one side only."""

    table: str
    key: dict[str, Any]
    kind: str  # changed | only_live | only_shadow
    columns: list[ColumnDifference] = field(default_factory=list)

    @property
    def citizen_id(self) -> str | None:
        for name in _CITIZEN_COLUMNS:
            value = self.key.get(name)
            if value is not None:
                return str(value)
        for column in self.columns:
            if column.column in _CITIZEN_COLUMNS:
                return str(column.live or column.shadow)
        return None

    def describe(self, width: int = 60) -> str:
        """One readable line: where, and what differs."""
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        if self.kind == "only_live":
            return f"{self.table} ({key}): only in the live projection"
        if self.kind == "only_shadow":
            return f"{self.table} ({key}): only in the rebuild"
        changes = "; ".join(
            f"{c.column}: live {shorten(_text(c.live), width)} ≠ rebuilt {shorten(_text(c.shadow), width)}"
            for c in self.columns
        )
        return f"{self.table} ({key}): {changes}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class TableComparison:
    table: str
    live_rows: int
    shadow_rows: int
    differing: int


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two projection schemas."""

    live: str
    shadow: str
    tables: list[TableComparison]
    differences: list[RowDifference]

    @property
    def identical(self) -> bool:
        return all(t.differing == 0 for t in self.tables)

    @property
    def differing_rows(self) -> int:
        return sum(t.differing for t in self.tables)


def row_differences(
    table: str, key: dict[str, Any], live: dict[str, Any] | None, shadow: dict[str, Any] | None
) -> RowDifference:
    """The differing columns of one row, from both sides' ``to_jsonb`` (ignored columns left out)."""
    if live is None:
        return RowDifference(table, key, "only_shadow")
    if shadow is None:
        return RowDifference(table, key, "only_live")
    names = [n for n in dict.fromkeys([*live, *shadow]) if n not in IGNORED_COLUMNS]
    return RowDifference(
        table,
        key,
        "changed",
        [ColumnDifference(n, live.get(n), shadow.get(n)) for n in names if live.get(n) != shadow.get(n)],
    )


async def compare_schemas(conn: asyncpg.Connection, live: str, shadow: str, *, limit: int = 20) -> Comparison:
    """Compare every table of ``live`` (but ``view_outbox``) with the same table of ``shadow``, on ``conn``.

    Both sides are read in the caller's transaction, so the caller decides which moment each side shows.
    At most ``limit`` differing rows are fetched in full, first rows by key first.
    """
    tables: list[TableComparison] = []
    differences: list[RowDifference] = []
    await conn.execute("SET LOCAL work_mem = '64MB'")  # the hash joins of big tables stay in memory
    for table in await tables_of(conn, live):
        if table in IGNORED_TABLES:
            continue
        columns = [c for c, _ in await columns_of(conn, live, table) if c not in IGNORED_COLUMNS]
        key = await primary_key_of(conn, live, table) or columns
        cols = ", ".join(f'"{c}"' for c in columns)
        keys = ", ".join(f'"{c}"' for c in key)
        side = "SELECT {keys}, md5(ROW({cols})::text) AS h FROM {schema}.{table}"
        joined = (
            f"({side.format(keys=keys, cols=cols, schema=live, table=table)}) l FULL JOIN "
            f"({side.format(keys=keys, cols=cols, schema=shadow, table=table)}) s USING ({keys})"
        )
        counts = await conn.fetchrow(
            f"SELECT count(l.h) AS live_rows, count(s.h) AS shadow_rows, "
            f"count(*) FILTER (WHERE l.h IS DISTINCT FROM s.h) AS differing FROM {joined}"
        )
        assert counts is not None
        tables.append(TableComparison(table, counts["live_rows"], counts["shadow_rows"], counts["differing"]))
        room = limit - len(differences)
        if counts["differing"] and room > 0:
            rows = await conn.fetch(
                f"SELECT {keys} FROM {joined} WHERE l.h IS DISTINCT FROM s.h ORDER BY {keys} LIMIT {int(room)}"
            )
            for row in rows:
                where = " AND ".join(f'"{c}" = ${i + 1}' for i, c in enumerate(key))
                values = [row[c] for c in key]
                sides = []
                for schema in (live, shadow):
                    found = await conn.fetchval(
                        f"SELECT to_jsonb(t)::text FROM {schema}.{table} t WHERE {where}", *values
                    )
                    sides.append(None if found is None else json.loads(found))
                differences.append(row_differences(table, {c: row[c] for c in key}, sides[0], sides[1]))
    return Comparison(live, shadow, tables, differences)


@dataclass(frozen=True)
class VerifyReport:
    """Verify's result: the comparison, at which checkpoints, and how the shadow got there."""

    shadow: str
    checkpoints: Positions
    comparison: Comparison
    catch_up: CatchUp
    last_stretch: ReplayStats
    created: bool

    @property
    def identical(self) -> bool:
        return self.comparison.identical

    @property
    def events(self) -> int:
        return total(self.checkpoints)


async def verify(
    settings: Settings,
    shadow: str = DEFAULT_SHADOW,
    *,
    limit: int = 20,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH,
    wait_live_s: float = 60.0,
    progress: Progress | None = None,
) -> VerifyReport:
    """Rebuild (or resume) ``shadow``, bring it to exactly the live checkpoints and compare it with the live view.

    See the module's docstring for why the comparison is exact on a live, still-ingesting stack.
    """
    check_name(shadow)
    async with (
        database(settings, application_name="renkou-verify", role=db_roles.OWNER) as conn,
        shadow_lock(conn, shadow),
    ):
        created = False
        if await schema_exists(conn, shadow):
            await check_compatible(conn, shadow)
        else:
            await create_shadow(conn, shadow)
            created = True
        caught = await catch_up(
            settings,
            conn,
            shadow,
            workers=workers,
            batch_size=batch_size,
            wait_live_s=wait_live_s,
            progress=progress,
        )
        await complete_indexes(conn, shadow)
        topics = department_topics(settings.topic_namespace)
        async with (
            swap_guard(conn, shared=True),
            replay_consumer(settings) as consumer,
            conn.transaction(isolation="repeatable_read"),
        ):
            # The snapshot is taken by this first statement: the live projection is seen exactly at these
            # checkpoints for the rest of the transaction.
            live_checkpoints = await read_checkpoints(conn, LIVE, topics)
            stretch = await stretch_to(
                conn, consumer, shadow, settings.topic_namespace, live_checkpoints, batch_size=batch_size
            )
            comparison = await compare_schemas(conn, LIVE, shadow, limit=limit)
            if comparison.identical:
                await write_note(conn, shadow, verified=True, events=total(live_checkpoints))
            else:
                await write_note(conn, shadow, verified=False, differing_rows=comparison.differing_rows)
    return VerifyReport(shadow, live_checkpoints, comparison, caught, stretch, created)


def summarize(tables: Sequence[TableComparison]) -> list[tuple[str, int, int, int]]:
    """(table, live rows, rebuilt rows, differing rows) for display."""
    return [(t.table, t.live_rows, t.shadow_rows, t.differing) for t in tables]
