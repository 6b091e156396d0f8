"""Per-consumer view topics (CONTRACT §11): what the view relay needs to deliver them, record them, and no more.

- ``view_topic_deliveries``: per consumer and resident, a digest of the filtered view last delivered — a
  consumer receives (and the resident's access log records) a view only when what that consumer may see of it
  changed, not every time another department's event touches the resident.
- ``view_topic_backfills``: how far the relay has brought a consumer's topic up to date with the residents
  already known when the grant was made (a cursor in citizen-ID order; ``completed_at`` once through).
- The relay reads the grants' purposes and view topics (never their token hashes) and records each delivery
  through ``renkou_append_access_logs``, which re-checks the grant, so a revoked grant gets nothing more.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_MANY = "renkou_append_access_logs(text[], bytea[], uuid[], text[], text[], text[], text[], timestamptz[])"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE view_topic_deliveries (
            consumer    text  NOT NULL REFERENCES consumer_grants (name),
            citizen_id  text  NOT NULL,
            digest      bytea NOT NULL,
            PRIMARY KEY (consumer, citizen_id)
        )
    """)
    op.execute("""
        CREATE TABLE view_topic_backfills (
            consumer      text        PRIMARY KEY REFERENCES consumer_grants (name),
            through       text        NOT NULL DEFAULT '',
            started_at    timestamptz NOT NULL DEFAULT now(),
            completed_at  timestamptz
        )
    """)
    for table in ("view_topic_deliveries", "view_topic_backfills"):
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO renkou_view_relay")
        op.execute(f"GRANT SELECT ON {table} TO renkou_operator")
    op.execute(
        "GRANT SELECT (name, purpose_sections, view_topic, expires_at, revoked_at) ON consumer_grants "
        "TO renkou_view_relay"
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION {APPEND_MANY} TO renkou_view_relay")


def downgrade() -> None:
    op.execute(f"REVOKE EXECUTE ON FUNCTION {APPEND_MANY} FROM renkou_view_relay")
    op.execute(
        "REVOKE SELECT (name, purpose_sections, view_topic, expires_at, revoked_at) ON consumer_grants "
        "FROM renkou_view_relay"
    )
    op.execute("DROP TABLE view_topic_backfills")
    op.execute("DROP TABLE view_topic_deliveries")
