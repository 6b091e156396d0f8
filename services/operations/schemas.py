"""Projection schemas: the live one, shadows being rebuilt, old ones kept after a swap.

A shadow is a copy of the *shape* of ``projection``, enumerated from the catalogue (never a hard-coded table list
that could drift from the migrations): ``CREATE TABLE <shadow>.<t> (LIKE projection.<t> INCLUDING ALL EXCLUDING
INDEXES)``, then the live schema's primary-key/unique constraints, indexes and triggers re-created from their
catalogue definitions under **the same names**. Keeping the names matters: after a swap the shadow *is*
``projection``, and a later Alembic migration that names an index or a trigger must still find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from projections.resident.tables import DEFAULT_SCHEMA, SCHEMA_NAME
from services.operations.base import BadInputError, NotFoundError, OperationError

LIVE = DEFAULT_SCHEMA
DEFAULT_SHADOW = "projection_shadow"
OLD_PREFIX = "projection_old_"
_RESERVED = {"public", "information_schema"}


def check_name(name: str, *, allow_live: bool = False) -> str:
    """``name`` if it can name a shadow schema (lower-case identifier, not a system or the live schema)."""
    if not SCHEMA_NAME.fullmatch(name) or name.startswith("pg_") or name in _RESERVED:
        raise BadInputError(f"{name!r} cannot name a projection schema (lower-case letters, digits and _, not pg_*)")
    if name == LIVE and not allow_live:
        raise BadInputError(f"{name!r} is the live schema; name a shadow (default {DEFAULT_SHADOW})")
    return name


async def schema_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name))


async def tables_of(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The ordinary tables of ``schema``, sorted."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        schema,
    )
    return [r["relname"] for r in rows]


async def columns_of(conn: asyncpg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """``(name, type)`` of the visible columns of ``schema.table``, in order."""
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        schema,
        table,
    )
    return [(r["attname"], r["type"]) for r in rows]


async def primary_key_of(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """The primary-key columns of ``schema.table``, in key order (empty when it has none)."""
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
        schema,
        table,
    )
    return [r["attname"] for r in rows]


def retarget(definition: str, source: str, target: str, table: str) -> str:
    """A catalogue definition (``CREATE INDEX … ON source.table …``) rewritten to act on ``target.table``."""
    old, new = f" ON {source}.{table} ", f" ON {target}.{table} "
    if old not in definition:
        raise OperationError(f"cannot copy {definition!r}: it does not act on {source}.{table}")
    return definition.replace(old, new, 1)


async def secondary_indexes(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, str]:
    """The indexes of ``schema.table`` that back no constraint: name → ``CREATE INDEX`` definition."""
    rows = await conn.fetch(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE n.nspname = $1 AND c.relname = $2 "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid) "
        "ORDER BY ic.relname",
        schema,
        table,
    )
    return {r["relname"]: r["def"] for r in rows}


async def create_shadow(
    conn: asyncpg.Connection, name: str, source: str = LIVE, *, defer_indexes: bool = True
) -> list[str]:
    """Create schema ``name`` with every table of ``source`` (empty), its keys, triggers and indexes.

    ``defer_indexes``: the indexes that back no constraint are left for ``complete_indexes``. None of them
    serves the projector's writes, and building them once over the loaded rows costs PostgreSQL far less than
    maintaining them row by row through a rebuild of the whole log. Runs in its own transaction; returns the
    tables created.
    """
    check_name(name)
    async with conn.transaction():
        if await schema_exists(conn, name):
            raise OperationError(f"schema {name} already exists")
        tables = await tables_of(conn, source)
        if not tables:
            raise NotFoundError(f"schema {source} has no tables; is the database migrated? (renkou infra up)")
        await conn.execute(f"CREATE SCHEMA {name}")
        for table in tables:
            await conn.execute(f"CREATE TABLE {name}.{table} (LIKE {source}.{table} INCLUDING ALL EXCLUDING INDEXES)")
            for row in await conn.fetch(
                "SELECT con.conname, pg_get_constraintdef(con.oid) AS def FROM pg_constraint con "
                "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relname = $2 AND con.contype IN ('p', 'u', 'x') ORDER BY con.conname",
                source,
                table,
            ):
                await conn.execute(f'ALTER TABLE {name}.{table} ADD CONSTRAINT "{row["conname"]}" {row["def"]}')
            for row in await conn.fetch(
                "SELECT pg_get_triggerdef(t.oid) AS def FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relname = $2 AND NOT t.tgisinternal ORDER BY t.tgname",
                source,
                table,
            ):
                await conn.execute(retarget(row["def"], source, name, table))
        # The live schema's privilege matrix (migration 0009), so that after a swap every service finds the
        # rights it had, and no more.
        await conn.execute("SELECT renkou_grant_projection($1)", name)
        if not defer_indexes:
            await complete_indexes(conn, name, source)
    return tables


async def complete_indexes(conn: asyncpg.Connection, name: str, source: str = LIVE) -> list[str]:
    """Create every index of ``source`` that ``name`` lacks, under the same name; return the names created."""
    created = []
    for table in await tables_of(conn, source):
        have = await secondary_indexes(conn, name, table)
        for index, definition in (await secondary_indexes(conn, source, table)).items():
            if index not in have:
                await conn.execute(retarget(definition, source, name, table))
                created.append(index)
    return created


async def check_compatible(conn: asyncpg.Connection, name: str, source: str = LIVE) -> None:
    """Refuse a shadow whose tables or columns differ from ``source`` (made before a migration, say)."""
    mine, theirs = await tables_of(conn, name), await tables_of(conn, source)
    if mine != theirs:
        raise OperationError(
            f"schema {name} has tables {mine}, {source} has {theirs}: rebuild it with `renkou replay --fresh`"
        )
    for table in theirs:
        if await columns_of(conn, name, table) != await columns_of(conn, source, table):
            raise OperationError(
                f"{name}.{table} does not have the columns of {source}.{table}: rebuild it with `renkou replay --fresh`"
            )


async def ensure_shadow(conn: asyncpg.Connection, name: str, *, fresh: bool = False) -> bool:
    """Make sure shadow ``name`` exists and fits the live schema; ``fresh`` drops it first. True if created."""
    check_name(name)
    if await schema_exists(conn, name):
        if not fresh:
            await check_compatible(conn, name)
            return False
        await drop_schema(conn, name)
    await create_shadow(conn, name)
    return True


async def is_projection_schema(conn: asyncpg.Connection, name: str) -> bool:
    """Whether ``name`` holds a projection's tables (its event archive and checkpoints)."""
    tables = set(await tables_of(conn, name))
    return {"event_archive", "checkpoints"} <= tables


async def drop_schema(conn: asyncpg.Connection, name: str) -> None:
    """Drop a shadow or an old projection schema; never the live one, never a schema that is not a projection."""
    check_name(name)
    if not await schema_exists(conn, name):
        raise NotFoundError(f"no schema {name}")
    if not await is_projection_schema(conn, name):
        raise OperationError(f"schema {name} does not hold a projection (no event_archive/checkpoints); not dropped")
    await conn.execute(f"DROP SCHEMA {name} CASCADE")


@dataclass(frozen=True)
class SchemaInfo:
    """A schema holding a projection, with what renkou noted about it (``COMMENT ON SCHEMA``)."""

    name: str
    role: str  # live | shadow | old
    note: dict[str, Any]


async def projection_schemas(conn: asyncpg.Connection) -> list[SchemaInfo]:
    """Every schema that holds a projection: the live one first, then the others by name."""
    rows = await conn.fetch(
        "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') AS note FROM pg_namespace n "
        "WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'event_archive') "
        "AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'checkpoints') "
        "ORDER BY n.nspname <> $1, n.nspname",
        LIVE,
    )
    found = []
    for r in rows:
        name = r["nspname"]
        role = "live" if name == LIVE else "old" if name.startswith(OLD_PREFIX) else "shadow"
        found.append(SchemaInfo(name, role, _parse_note(r["note"])))
    return found


def _parse_note(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        note = json.loads(text)
    except ValueError:
        return {}
    return note if isinstance(note, dict) and "renkou" in note else {}


async def read_note(conn: asyncpg.Connection, name: str) -> dict[str, Any]:
    """renkou's note on schema ``name`` (``{}`` when none)."""
    text = await conn.fetchval("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", name)
    return _parse_note(text)


async def write_note(conn: asyncpg.Connection, name: str, **note: Any) -> None:
    """Record ``note`` (JSON, with the time) as the schema's comment; ``COMMENT`` is transactional."""
    body = {"renkou": True, "at": datetime.now(UTC).isoformat(timespec="seconds"), **note}
    text = json.dumps(body, sort_keys=True).replace("'", "''")
    await conn.execute(f"COMMENT ON SCHEMA {name} IS '{text}'")


def old_schema_name(now: datetime | None = None) -> str:
    """``projection_old_<yyyymmddhhmmss>`` (UTC) for the schema a swap retires."""
    return OLD_PREFIX + (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
