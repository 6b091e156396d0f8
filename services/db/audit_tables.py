"""The audit trail's tables in the public schema, declared once (SQLAlchemy Core): the access log, its chain heads
and the heads the last anchor pinned.

They live beside the projection's schemas, not in them: a rebuild replaces the view, never who read it nor what an
anchor signed. So they are declared with the schema ``public`` named, which a ``Statement``'s
``schema_translate_map`` (it maps only the projection's schema) leaves as it is — one statement can join a shadow's
archive with the live access log. Naming the schema also keeps a role's ``search_path`` out of which table is meant.

``tests/integration/test_projection_tables.py`` holds these to the migrations, as it holds the projection's.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

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
    Column("accessed_at", DateTime(timezone=True), nullable=False),
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
