"""The resident-view projection's tables, declared once (SQLAlchemy Core), and its statements compiled once.

The migrations (``services/db/migrations``) make the tables; this module says what they are, for the code that
reads and writes them. ``tests/integration/test_projection_tables.py`` holds the two together: every declared
column, its type, whether it may be null and every primary key, against a freshly migrated database.

Every table is declared in the live schema, ``projection``. A rebuild writes the same tables in a shadow schema
(``services.operations.schemas``): a statement is compiled for one schema with SQLAlchemy's
``schema_translate_map``, which quotes the name it puts in; a statement written as text names a table with
``named`` / ``in_schema``. Both check the schema (``safe_schema``). Only the operations that make, rename and
compare whole schemas (``services.operations.schemas``, ``swap``, ``verify``) put a schema name into DDL
themselves, after their own check of it (``schemas.check_name``, the same rule and more).

``Statement`` compiles once per schema, to the text asyncpg runs (``$n`` parameters, typed by their casts), and
remembers it: the statements run on hot paths, where compiling each time would cost more than running them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    TableValuedAlias,
    Text,
    any_,
    bindparam,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeEngine

DEFAULT_SCHEMA: Final = "projection"
"""The live projection's schema; the tables below are declared in it."""

metadata: Final = MetaData(schema=DEFAULT_SCHEMA)


NOW: Final = text("now()")
"""The default of the columns that say when a row was written."""


def when() -> DateTime:
    """The type of a column that holds an instant (``timestamptz``)."""
    return DateTime(timezone=True)


checkpoints: Final = Table(
    "checkpoints",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("topic", Text, primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", when(), nullable=False, server_default=NOW),
)
"""The next offset to apply of each partition a projection reads; its row lock is the projector's fence."""

event_archive: Final = Table(
    "event_archive",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("department", Text, primary_key=True),
    Column("chain_seq", Integer, primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", when(), nullable=False),
    Column("recorded_at", when(), nullable=False),
    Column("topic", Text, nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("archived_at", when(), nullable=False, server_default=NOW),
    Column("logged_at", when()),
)
"""Every accepted event in canonical form, chained per citizen and department."""

sections: Final = Table(
    "sections",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("department", Text, primary_key=True),
    Column("state", JSONB, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("last_event_at", when(), nullable=False),
    Column("chain_seq", Integer, nullable=False),
    Column("chain_head", LargeBinary, nullable=False),
)
"""One department's folded state of one citizen, with its chain head."""

parent_links: Final = Table(
    "parent_links",
    metadata,
    Column("child_citizen_id", Text, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("department", Text, primary_key=True),
    Column("parent_citizen_id", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
)
"""A child's mother or father as one department states it."""

birth_certificates: Final = Table(
    "birth_certificates",
    metadata,
    Column("certificate_no", Text, primary_key=True),
    Column("mother_citizen_id", Text, primary_key=True),
    # What the two departments say together (what readers use) …
    Column("father_citizen_id", Text),
    Column("child_name", Text),
    Column("child_sex", Text),
    Column("birth_date", Date),
    Column("certified_event_id", UUID(as_uuid=True)),
    Column("child_citizen_id", Text),
    Column("registered_event_id", UUID(as_uuid=True)),
    # … then each department's latest statement (what the next merge needs).
    Column("registered_at", when()),
    Column("registered_father_citizen_id", Text),
    Column("registered_child_name", Text),
    Column("registered_child_sex", Text),
    Column("registered_birth_date", Date),
    Column("certified_at", when()),
    Column("certified_father_citizen_id", Text),
    Column("certified_child_name", Text),
    Column("certified_child_sex", Text),
    Column("certified_birth_date", Date),
)
"""A birth as health certifies it and public security registers it, merged (``family.merge_certificates``)."""

household_members: Final = Table(
    "household_members",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("household_id", Text, nullable=False),
    Column("household_type", Text, nullable=False),
    Column("relationship", Text, nullable=False),
    Column("region_code", Text, nullable=False),
)
"""Each citizen's household now."""

number_links: Final = Table(
    "number_links",
    metadata,
    Column("old_citizen_id", Text, primary_key=True),
    Column("new_citizen_id", Text, nullable=False),
    Column("linked_on", Date, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("reason", Text),
)
"""The standing link of a superseded number to its successor (§12)."""

dead_letters: Final = Table(
    "dead_letters",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    Column("kafka_offset", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("record_key", LargeBinary),
    Column("record_value", LargeBinary),
    Column("event_id", Text),
    Column("rejected_at", when(), nullable=False, server_default=NOW),
    Column("redriven_at", when()),
    Column("value_size", BigInteger),
)
"""Records the projector could not apply, with why: kept, never stalling the rest."""

view_outbox: Final = Table(
    "view_outbox",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("enqueued_at", when(), nullable=False, server_default=NOW),
)
"""Citizens whose view changed and waits to be published on the view topics."""


SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""What may name a projection schema (or a department's outbox and its schema, ``services.publisher.outbox``): a
lower-case identifier, which PostgreSQL reads the same quoted or not unless it is a reserved word (``user``,
``order``), which ``quote`` (and so a ``Statement`` and ``named``) quotes."""


def safe_schema(schema: str) -> str:
    """``schema`` if it matches ``SCHEMA_NAME``, else a ``ValueError``: checked by every ``Statement`` and by
    ``named``, the two ways the code's statements take a schema name."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r} (lower-case letters, digits and _)")
    return schema


_DIALECT: Final = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def quote(name: str) -> str:
    """``name`` as an identifier in SQL: as it is, or double-quoted where PostgreSQL needs it (a reserved word)."""
    return str(_DIALECT.identifier_preparer.quote(name))


def named(table: Table, schema: str = DEFAULT_SCHEMA) -> str:
    """``table``'s qualified name for a statement written as text (one Core would make harder to read: the JSONB
    walks of the statistics, the single read's one round trip): a projection table in ``schema`` (checked), any
    other in the schema it is declared in, each part quoted as a compiled statement quotes it. So a statement
    written by hand names only declared tables, which the migrations are held to, and never formats a schema."""
    target = safe_schema(schema) if table.schema == DEFAULT_SCHEMA else table.schema
    return f"{quote(target)}.{quote(table.name)}" if target else quote(table.name)


def in_schema(schema: str = DEFAULT_SCHEMA) -> dict[str, str]:
    """Every projection table's ``named`` name in ``schema``, by table name: what a statement written as text is
    formatted with (``{sections}``, ``{number_links}``…)."""
    return {table.name: named(table, schema) for table in metadata.tables.values()}


def sql_type(column: Column[Any]) -> str:
    """The PostgreSQL name of ``column``'s type, as a cast writes it (``TEXT``, ``TIMESTAMP WITH TIME ZONE``)."""
    return str(column.type.compile(dialect=_DIALECT))


class Statement:
    """A Core statement compiled once per schema into the text asyncpg runs, with its parameters' order.

    ``bind`` gives the text followed by the named values in that order, to splat into an asyncpg call:
    ``await conn.fetch(*s.bind(schema, ids=[…]))``.
    """

    __slots__ = ("_compiled", "_statement")

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {}

    def _compile(self, schema: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
        found = self._compiled.get(schema)
        if found is None:
            safe_schema(schema)
            compiled = self._statement.compile(  # type: ignore[attr-defined]
                dialect=_DIALECT, schema_translate_map={DEFAULT_SCHEMA: schema}, render_schema_translate=True
            )
            order = tuple(compiled.positiontup or ())
            found = self._compiled[schema] = (compiled.string, order, frozenset(order))
        return found

    def parameter_types(self) -> dict[str, TypeEngine[Any]]:
        """Each parameter's type, by name."""
        return {name: bind.type for name, bind in self._statement.compile(dialect=_DIALECT).binds.items()}  # type: ignore[attr-defined]

    def sql(self, schema: str = DEFAULT_SCHEMA) -> str:
        """The statement's text for the tables of ``schema``."""
        return self._compile(schema)[0]

    def bind(self, schema: str = DEFAULT_SCHEMA, /, **values: Any) -> tuple[Any, ...]:
        """``(text, *values)``: the statement's text for ``schema`` and ``values`` in its parameters' order; a
        parameter missing, or a value for none, is a ``TypeError`` naming it."""
        text, order, names = self._compile(schema)
        if values.keys() != names:
            raise TypeError(f"parameters {sorted(names)} expected, {sorted(values)} given")
        return (text, *(values[name] for name in order))


def unnest(table: Table, *names: str, alias: str = "u") -> TableValuedAlias:
    """``unnest($1::t1[], $2::t2[], …) AS u(c1, c2, …)``: one array parameter per named column of ``table``,
    named and typed as the column — the rows of a set-based statement, one element per row."""
    cols = [table.c[n] for n in names]
    arrays = (bindparam(c.name, type_=ARRAY(c.type)) for c in cols)
    return func.unnest(*arrays).table_valued(*(column(c.name, c.type) for c in cols)).render_derived(name=alias)


def any_of(col: ColumnElement[Any], name: str | None = None) -> ColumnElement[bool]:
    """``col = ANY($n::t[])``: ``col`` is one of an array parameter (named ``name``, else as the column)."""
    return col == any_(bindparam(name or col.key, type_=ARRAY(col.type)))
