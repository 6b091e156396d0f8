"""The audit trail's tables in the public schema, declared once (SQLAlchemy Core) — the access log, its chain heads,
what the last anchor signed, the refused and the aggregate reads and the console's actions — and the two
hash-chained logs as the statements that check and anchor them see
them (``ChainedLog``).

They live beside the projection's schemas, not in them: a rebuild replaces the view, never who read it nor what an
anchor signed. So they are declared with the schema ``public`` named, which a ``Statement``'s
``schema_translate_map`` (it maps only the projection's schema) leaves as it is — one statement can join a shadow's
archive with the live access log. Naming the schema also keeps a role's ``search_path`` out of which table is meant.

``tests/integration/test_projection_tables.py`` holds these to the migrations, as it holds the projection's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from projections.resident import tables
from projections.resident.tables import NOW, named, when

PUBLIC: Final = "public"

metadata: Final = MetaData(schema=PUBLIC)

access_log: Final = Table(
    "access_log",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("chain_seq", Integer, primary_key=True),
    Column("request_id", UUID(as_uuid=True), nullable=False),
    Column("consumer", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("sections", ARRAY(Text), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("accessed_at", when(), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)
"""Every read of a resident (CONTRACT §4), appended before the answer leaves and hash-chained per number."""

access_log_heads: Final = Table(
    "access_log_heads",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("chain_seq", Integer, nullable=False),
    Column("head", LargeBinary, nullable=False),
)
"""The head of each number's access-log chain; its row lock serialises the appends of one number."""

audit_anchor_heads: Final = Table(
    "audit_anchor_heads",
    metadata,
    Column("log", Text, primary_key=True),
    Column("citizen_id", Text, primary_key=True),
    Column("department", Text, primary_key=True),
    Column("leaf", Integer, nullable=False),
    Column("chain_seq", Integer, nullable=False),
    Column("head", LargeBinary, nullable=False),
)
"""The head of every chain (of the archive and of the access log) as the last signed anchor pinned it; the access
log's chains have the department ``''``."""

audit_anchor_leaves: Final = Table(
    "audit_anchor_leaves",
    metadata,
    Column("log", Text, primary_key=True),
    Column("leaf", Integer, primary_key=True),
    Column("digest", LargeBinary, nullable=False),
)
"""The digest of every leaf of the last signed anchor, so a new one rehashes only the leaves that moved."""

audit_anchor_latest: Final = Table(
    "audit_anchor_latest",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("seq", BigInteger, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("published", Boolean, nullable=False, server_default=text("false")),
    Column("built_at", when(), nullable=False, server_default=NOW),
)
"""The last anchor built, signed, and whether it reached its Kafka topic."""

refused_reads: Final = Table(
    "refused_reads",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("refused_at", when(), nullable=False),
    Column("request_id", UUID(as_uuid=True), nullable=False),
    Column("consumer", Text),
    Column("purpose", Text),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("code", Text, nullable=False),
    Column("message", Text, nullable=False),
)
"""Every read the query API refused for want of a right (CONTRACT §11); append-only."""

aggregate_reads: Final = Table(
    "aggregate_reads",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("read_at", when(), nullable=False),
    Column("request_id", UUID(as_uuid=True), nullable=False),
    Column("consumer", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
)
"""Every read of aggregates (statistics), about no one resident, written before the answer leaves (CONTRACT §11);
append-only."""

console_actions: Final = Table(
    "console_actions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("acted_at", when(), nullable=False, server_default=NOW),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("outcome", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
"""What each console user — operator, auditor or citizen — did, on what, when and with what outcome (CONTRACT §14);
append-only."""


@dataclass(frozen=True, slots=True)
class ChainedLog:
    """One of the two append-only, hash-chained logs: its rows, the columns that name one chain, and where each
    chain's head is stored. ``verify`` recomputes it, the anchor builder pins it and the anchor check compares."""

    name: str
    """As anchors name it (``services.anchor.record.LOGS``)."""
    rows: Table
    chain: tuple[str, ...]
    """The columns of ``rows`` (and of ``heads``) that name a chain, in key order; ``chain_seq`` orders it."""
    heads: Table
    head: str
    """The column of ``heads`` holding the chain's last link."""
    started: str = "true"
    """Which rows of ``heads`` are chains (a condition on ``heads``): an access-log head at 0 has no entry yet, it
    is the genesis the number's first append starts from."""

    def rows_in(self, schema: str) -> str:
        """``rows``' name in SQL, for the projection in ``schema`` (the access log is the same for every one)."""
        return named(self.rows, schema)

    def heads_in(self, schema: str) -> str:
        """``heads``' name in SQL, for the projection in ``schema``."""
        return named(self.heads, schema)

    def same_chain(self, a: str, b: str) -> str:
        """``a.citizen_id = b.citizen_id [AND a.department = b.department]``: rows ``a`` and ``b`` are one chain's."""
        return " AND ".join(f"{a}.{c} = {b}.{c}" for c in self.chain)

    @property
    def has_departments(self) -> bool:
        """Whether a chain is a citizen's and a department's (the archive), not a citizen's alone."""
        return "department" in self.chain


ARCHIVE_LOG: Final = ChainedLog(
    "archive", tables.event_archive, ("citizen_id", "department"), tables.sections, "chain_head"
)
"""The event archive: a chain per citizen and department, its head in the sections."""

ACCESS_LOG: Final = ChainedLog("access_log", access_log, ("citizen_id",), access_log_heads, "head", "chain_seq > 0")
"""The access log: a chain per number."""

CHAINED_LOGS: Final = (ARCHIVE_LOG, ACCESS_LOG)
