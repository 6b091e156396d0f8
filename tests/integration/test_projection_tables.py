"""``projections.resident.tables``, ``services.db.audit_tables`` and ``services.db.service_tables`` say what the
migrations make: every table of the live schema and of the public one declared, and each declared table with its
columns in order, their types, their defaults (an identity's too), which may be null and the primary key; and every
statement compiled from the declarations runs, with values of its parameters' declared types, in the live schema and
in a shadow made for a rebuild."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Date, DateTime, Identity, Integer, LargeBinary, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.types import TypeEngine

from projections.resident import reads, store, tables
from projections.resident.tables import DEFAULT_SCHEMA, Statement, sql_type
from services.access_log import database as access_log_database
from services.db import audit_tables, service_tables
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


_PUBLIC = {**audit_tables.metadata.tables, **service_tables.metadata.tables}
assert len(_PUBLIC) == len(audit_tables.metadata.tables) + len(service_tables.metadata.tables), "a table declared twice"


async def test_every_table_of_the_public_schema_is_declared(conn: asyncpg.Connection) -> None:
    """Alembic's own ``alembic_version`` aside: a statement names no table the migrations are not held to."""
    migrated = [t for t in await tables_of(conn, audit_tables.PUBLIC) if t != "alembic_version"]
    assert sorted(_PUBLIC) == [f"{audit_tables.PUBLIC}.{t}" for t in migrated]


_DECLARED = sorted([*tables.metadata.tables.items(), *_PUBLIC.items()])


def _default(column: Column[Any]) -> str | None:
    """A declared column's default as ``pg_attribute`` shows it (an identity as its kind)."""
    if isinstance(column.identity, Identity):
        return "identity always" if column.identity.always else "identity by default"
    return None if column.server_default is None else str(column.server_default.arg)  # type: ignore[attr-defined]


@pytest.mark.parametrize("table", [t for _, t in _DECLARED], ids=str)
async def test_a_declared_table_is_the_migrated_one(conn: asyncpg.Connection, table: Table) -> None:
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, "
        "CASE a.attidentity WHEN 'a' THEN 'identity always' WHEN 'd' THEN 'identity by default' "
        "ELSE pg_get_expr(d.adbin, d.adrelid) END AS server_default FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        f"{table.schema}.{table.name}",
    )
    migrated = [(r["attname"], r["type"], r["nullable"], r["server_default"]) for r in rows]
    declared = [(c.name, sql_type(c).lower(), c.nullable, _default(c)) for c in table.c]
    assert declared == migrated
    assert table.schema is not None
    assert [c.name for c in table.primary_key] == await primary_key_of(conn, table.schema, table.name)


_WITH_STATEMENTS = (store, reads, access_log_database)
"""The modules that compile statements from the declarations: the write store, the read store and the others."""


def _statements() -> dict[str, Statement]:
    """Every statement compiled from the declarations."""
    return {
        f"{module.__name__}.{name}": value
        for module in _WITH_STATEMENTS
        for name, value in vars(module).items()
        if isinstance(value, Statement)
    }


def _sample(kind: TypeEngine[Any]) -> Any:
    """A value of a parameter's declared type, as asyncpg is given it (an array of one, for an array)."""
    if isinstance(kind, ARRAY):
        return [_sample(kind.item_type)]
    samples: list[tuple[type[TypeEngine[Any]], Any]] = [
        (JSONB, '{"sample": true}'),
        (Text, "x"),
        (Integer, 1),  # BigInteger too
        (DateTime, datetime(2026, 1, 1, tzinfo=UTC)),
        (Date, date(2026, 1, 1)),
        (UUID, uuid.uuid4()),
        (LargeBinary, b"x"),
    ]
    return next(value for sql_type, value in samples if isinstance(kind, sql_type))


@pytest.mark.parametrize("schema", [DEFAULT_SCHEMA, SHADOW])
async def test_every_statement_runs_in_the_live_schema_and_in_a_shadow(conn: asyncpg.Connection, schema: str) -> None:
    """Each statement, with a value of each parameter's declared type, runs against that schema's tables (each in a
    transaction rolled back): the names, the casts and the driver's encoding of every parameter hold."""
    if schema != DEFAULT_SCHEMA:
        await create_shadow(conn, schema)
    for name, statement in _statements().items():
        sql = statement.sql(schema)
        named = set(re.findall(r"(?<![\w.])(\w+)\.\w+\.?", sql)) & {DEFAULT_SCHEMA, SHADOW}
        assert named == {schema}, name
        values = {p: _sample(kind) for p, kind in statement.parameter_types().items()}
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.fetch(*statement.bind(schema, **values))
        except asyncpg.CheckViolationError:
            pass  # the sample is not a value the table takes (a role, say): the row reached its checks
        finally:
            await transaction.rollback()


def test_a_schema_name_is_a_lower_case_identifier_or_nothing_is_compiled() -> None:
    statement = _statements()["projections.resident.store._LOAD_SECTIONS"]
    assert statement.sql("projection_old_20261206").startswith("SELECT projection_old_20261206.sections.")
    for bad in ('x"; DROP TABLE projection.sections; --', "Shadow", "9abc", "projection\n", "户籍"):
        with pytest.raises(ValueError, match="invalid schema name"):
            statement.sql(bad)


def test_a_statement_refuses_a_parameter_it_does_not_have() -> None:
    statement = _statements()["projections.resident.reads._HOUSEHOLD"]
    with pytest.raises(TypeError, match="household_id"):
        statement.bind(DEFAULT_SCHEMA, household=["x"])
