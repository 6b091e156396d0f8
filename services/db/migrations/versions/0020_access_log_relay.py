"""Reads from a standby (CONTRACT §13): where the query API's relay stands in the access-log topic.

With ``RENKOU_ACCESS_LOG=kafka`` a read's access-log entries go to ``population.access_log.v1`` before its answer,
and the relay (``services.access_log.topic``) chains them into ``access_log`` on the primary. Each batch of a
partition commits with that partition's next offset here, in the same transaction, and applies only records at
or past the offset it finds (row-locked): a batch delivered twice — a restart, a rebalance, a relay that lost its
partition and has not noticed yet — is chained once. The query API role alone writes it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE access_log_offsets (
            topic        text    NOT NULL,
            partition    integer NOT NULL CHECK (partition >= 0),
            next_offset  bigint  NOT NULL CHECK (next_offset >= 0),
            PRIMARY KEY (topic, partition)
        )
    """)
    op.execute("REVOKE ALL ON access_log_offsets FROM PUBLIC")
    op.execute("GRANT SELECT, INSERT, UPDATE ON access_log_offsets TO renkou_query_api")
    op.execute("GRANT SELECT ON access_log_offsets TO renkou_operator")


def downgrade() -> None:
    op.execute("DROP TABLE access_log_offsets")
