"""Every read recorded (CONTRACT §11): refused reads, and reads of aggregates, each in an append-only log.

``refused_reads``: a request the query API refused for want of a right — no or an unknown token (401), a grant
that does not cover the purpose or the section (403) —, with the consumer when the token named one, the purpose
stated, what was asked and why it was refused. ``aggregate_reads``: each statistics read, with its consumer,
purpose and region. Neither names a resident's data; neither can be changed once written: the query API may
only INSERT, the operator only SELECT, and a trigger refuses UPDATE, DELETE and TRUNCATE even to the owner.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE refused_reads (
            id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            refused_at  timestamptz NOT NULL,
            request_id  uuid        NOT NULL,
            consumer    text,
            purpose     text,
            method      text        NOT NULL,
            path        text        NOT NULL,
            status      smallint    NOT NULL,
            code        text        NOT NULL,
            message     text        NOT NULL
        )
    """)
    op.execute("CREATE INDEX refused_reads_time ON refused_reads (refused_at)")
    op.execute("""
        CREATE TABLE aggregate_reads (
            id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            read_at     timestamptz NOT NULL,
            request_id  uuid        NOT NULL,
            consumer    text        NOT NULL,
            purpose     text        NOT NULL,
            endpoint    text        NOT NULL,
            detail      jsonb       NOT NULL
        )
    """)
    for table in ("refused_reads", "aggregate_reads"):
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION renkou_refuse_change()
        """)
        op.execute(f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION renkou_refuse_change()
        """)
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC")
        op.execute(f"GRANT INSERT ON {table} TO renkou_query_api")
        op.execute(f"GRANT SELECT ON {table} TO renkou_operator")


def downgrade() -> None:
    op.execute("DROP TABLE aggregate_reads")
    op.execute("DROP TABLE refused_reads")
