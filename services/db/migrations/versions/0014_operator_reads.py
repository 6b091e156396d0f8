"""Operators' reads are recorded like consumers' (CONTRACT §11): the operator role may append access-log entries.

``renkou resident show`` and ``renkou audit timeline`` append an entry for each resident they show (and each
relative a family section discloses) through ``renkou_access_log_append`` — the owner's ``SECURITY DEFINER``
function, which extends the chain and nothing else — before the view leaves the command. The entry's consumer is
``operator:<name>``, its purpose the one the operator states.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

APPEND = "renkou_access_log_append(text, bytea, uuid, text, text, text[], text, timestamptz)"


def upgrade() -> None:
    op.execute(f"GRANT EXECUTE ON FUNCTION {APPEND} TO renkou_operator")


def downgrade() -> None:
    op.execute(f"REVOKE EXECUTE ON FUNCTION {APPEND} FROM renkou_operator")
