"""``projections.resident.tables`` says what the migrations make: every table of the live schema declared, each
with its columns in order, their types, which may be null and the primary key; and every statement compiled from
the declarations is one PostgreSQL accepts in the live schema and in a shadow made for a rebuild."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Table

from projections.resident import reads, store, tables
from projections.resident.tables import DEFAULT_SCHEMA, Statement, sql_type
from services.db.dsn import asyncpg_dsn
from services.operations.schemas import create_shadow, primary_key_of, tables_of
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

SHADOW = "projection_shadow"


@pytest.fixture
async def conn(databases: Databases) -> AsyncIterator[asyncpg.Connection]:
    # The owner's connection: it may create the shadow a rebuild would.
    connection = await asyncpg.connect(asyncpg_dsn(await databases.create()))
    try:
        yield connection
    finally:
        await connection.close()


async def test_every_table_of_the_live_schema_is_declared(conn: asyncpg.Connection) -> None:
    assert sorted(tables.metadata.tables) == [f"{DEFAULT_SCHEMA}.{t}" for t in await tables_of(conn, DEFAULT_SCHEMA)]


@pytest.mark.parametrize("table", [t for _, t in sorted(tables.metadata.tables.items())], ids=str)
async def test_a_declared_table_is_the_migrated_one(conn: asyncpg.Connection, table: Table) -> None:
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable "
        "FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        f"{DEFAULT_SCHEMA}.{table.name}",
    )
    migrated = [(r["attname"], r["type"], r["nullable"]) for r in rows]
    declared = [(c.name, sql_type(c).lower(), c.nullable) for c in table.c]
    assert declared == migrated
    assert [c.name for c in table.primary_key] == await primary_key_of(conn, DEFAULT_SCHEMA, table.name)


def _statements() -> dict[str, Statement]:
    """The write store's statements and the read store's."""
    return {
        f"{module.__name__}.{name}": value
        for module in (store, reads)
        for name, value in vars(module).items()
        if isinstance(value, Statement)
    }


def test_the_stores_declare_their_statements() -> None:
    assert len(_statements()) >= 30  # the batch's and the readers', none formatted by hand


@pytest.mark.parametrize("schema", [DEFAULT_SCHEMA, SHADOW])
async def test_every_statement_runs_in_the_live_schema_and_in_a_shadow(conn: asyncpg.Connection, schema: str) -> None:
    if schema != DEFAULT_SCHEMA:
        await create_shadow(conn, schema)
    for name, statement in _statements().items():
        sql = statement.sql(schema)
        named = set(re.findall(r"(?<![\w.])(\w+)\.\w+\.?", sql)) & {DEFAULT_SCHEMA, SHADOW}
        assert named == {schema}, name
        await conn.prepare(sql)  # parsed, planned and typed by PostgreSQL against that schema's tables


def test_a_schema_name_is_quoted_never_formatted() -> None:
    statement = _statements()["projections.resident.store._LOAD_SECTIONS"]
    sql = statement.sql('x"; DROP TABLE projection.sections; --')
    assert '"x""; DROP TABLE projection.sections; --".sections' in sql
