"""Audit anchors: the anchored head of every chain, its leaf digests, and the latest signed anchor (CONTRACT §10).

``audit_anchor_heads`` holds, for every chain of the event archive and of the access log, the position and
link the latest anchor pinned, filed under its leaf (``sha256(citizen_id)[0:2]``); ``audit_anchor_leaves`` the
digest of every leaf that holds any. The anchor itself (on Kafka, signed outside the database) holds, per log,
256 bucket digests over those leaf digests (``services.anchor.record``): a row rewritten here breaks its leaf's
or its bucket's digest, and a row left alone lets ``renkou audit verify`` name the exact chain and position
that no longer match. The projector's anchor builder keeps both up to date, and only for chains that still
extend their anchored head.

``audit_anchor_latest`` keeps the latest signed anchor record (one row) with whether it reached Kafka yet: the
builder commits it with the heads it pins, then publishes it, so that the heads here always belong to an anchor
that is either on Kafka or the next one to be (re)published.

All three live in ``public``: they are not derived from the log (a rebuild of the projection must not replace
them).

Who may touch them (0009's least privilege): the projector, which builds anchors, reads the access log and
writes these three tables; the operator reads them (``renkou audit verify``); no service may write the access
log or the archive for it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE audit_anchor_heads (
            log        text     NOT NULL CHECK (log IN ('archive', 'access_log')),
            citizen_id text     NOT NULL,
            department text     NOT NULL,
            leaf       integer  NOT NULL CHECK (leaf BETWEEN 0 AND 65535),
            chain_seq  integer  NOT NULL CHECK (chain_seq >= 1),
            head       bytea    NOT NULL,
            PRIMARY KEY (log, citizen_id, department)
        )
    """)
    op.execute("CREATE INDEX audit_anchor_heads_leaf ON audit_anchor_heads (log, leaf)")
    op.execute("""
        CREATE TABLE audit_anchor_leaves (
            log    text    NOT NULL CHECK (log IN ('archive', 'access_log')),
            leaf   integer NOT NULL CHECK (leaf BETWEEN 0 AND 65535),
            digest bytea   NOT NULL,
            PRIMARY KEY (log, leaf)
        )
    """)
    op.execute("""
        CREATE TABLE audit_anchor_latest (
            singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
            seq        bigint      NOT NULL,
            record     bytea       NOT NULL,
            published  boolean     NOT NULL DEFAULT false,
            built_at   timestamptz NOT NULL DEFAULT now()
        )
    """)
    tables = "audit_anchor_heads, audit_anchor_leaves, audit_anchor_latest"
    op.execute(f"REVOKE ALL ON {tables} FROM PUBLIC")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO renkou_projector")
    op.execute(f"GRANT SELECT ON {tables} TO renkou_operator")
    op.execute("GRANT SELECT ON access_log, access_log_heads TO renkou_projector")


def downgrade() -> None:
    for table in ("audit_anchor_latest", "audit_anchor_leaves", "audit_anchor_heads"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
