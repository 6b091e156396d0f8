"""The public schema's other tables, declared once (SQLAlchemy Core): the rights — consumer grants, department
tokens, console accounts — and the services' own bookkeeping — what the gateway accepted, how far the view relay
and the access-log relay have come — with the baseline's ``renkou_meta``.

Like the audit trail's (``services.db.audit_tables``), they live beside the projection's schemas and are declared
with the schema ``public`` named: a statement written as text names them with ``tables.named``, so it names a
table the migrations are held to (``tests/integration/test_projection_tables.py``) and never depends on a role's
``search_path`` for which table is meant.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from projections.resident.tables import NOW, when
from services.db.audit_tables import PUBLIC

__all__ = [
    "access_log_offsets",
    "console_accounts",
    "consumer_grants",
    "department_tokens",
    "gateway_events",
    "metadata",
    "renkou_meta",
    "view_topic_backfills",
    "view_topic_deliveries",
]

metadata: Final = MetaData(schema=PUBLIC)

renkou_meta: Final = Table(
    "renkou_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
"""What the baseline migration recorded (``contract``: ``v1``)."""

consumer_grants: Final = Table(
    "consumer_grants",
    metadata,
    Column("name", Text, primary_key=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("sections", ARRAY(Text), nullable=False),
    Column("purposes", ARRAY(Text), nullable=False),
    Column("expires_at", when()),
    Column("created_at", when(), nullable=False, server_default=NOW),
    Column("revoked_at", when()),
    Column("purpose_sections", JSONB, nullable=False),
    Column("view_topic", Text),
)
"""A downstream consumer's grant (CONTRACT §7, §11): its token's hash, each purpose's sections, its expiry, its view
topic (``services.grants``)."""

department_tokens: Final = Table(
    "department_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("department", Text, nullable=False),
    Column("label", Text),
    Column("created_at", when(), nullable=False, server_default=NOW),
    Column("revoked_at", when()),
)
"""A department's gateway token, as its hash only (``services.gateway.auth``)."""

gateway_events: Final = Table(
    "gateway_events",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("content_hash", LargeBinary, nullable=False),
    Column("department", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("accepted_at", when(), nullable=False, server_default=NOW),
)
"""What the gateway accepted, by ``event_id`` (``services.gateway.ingest``): the same event again gets its original
coordinates, other content under the same ``event_id`` a 409."""

view_topic_deliveries: Final = Table(
    "view_topic_deliveries",
    metadata,
    Column("consumer", Text, ForeignKey(consumer_grants.c.name), primary_key=True),
    Column("citizen_id", Text, primary_key=True),
    Column("digest", LargeBinary, nullable=False),
)
"""The digest of the view last sent on a consumer's own view topic, per resident (``services.view_relay``)."""

view_topic_backfills: Final = Table(
    "view_topic_backfills",
    metadata,
    Column("consumer", Text, ForeignKey(consumer_grants.c.name), primary_key=True),
    Column("through", Text, nullable=False, server_default=text("''::text")),
    Column("started_at", when(), nullable=False, server_default=NOW),
    Column("completed_at", when()),
)
"""How far a consumer's view topic has been brought up to date with the residents already known (a cursor)."""

access_log_offsets: Final = Table(
    "access_log_offsets",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
"""Each partition's next offset of the access-log topic, committed with the entries it wrote
(``services.access_log``)."""

console_accounts: Final = Table(
    "console_accounts",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", when(), nullable=False, server_default=NOW),
)
"""An operator's or auditor's console account, its password as an argon2 hash (``services.console.accounts``)."""
