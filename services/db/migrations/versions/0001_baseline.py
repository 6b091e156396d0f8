"""Baseline: the schema renkou's tables live in, and a record of the contract version.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS renkou_meta (key text PRIMARY KEY, value text NOT NULL)")
    op.execute("INSERT INTO renkou_meta (key, value) VALUES ('contract', 'v1') ON CONFLICT (key) DO NOTHING")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS renkou_meta")
