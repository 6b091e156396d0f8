"""The view relay may forget a delivery (CONTRACT §12): when a superseded number's record is removed from a
consumer's topic (a tombstone), its digest goes too, so that the person is delivered under their current number.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("GRANT DELETE ON view_topic_deliveries TO renkou_view_relay")


def downgrade() -> None:
    op.execute("REVOKE DELETE ON view_topic_deliveries FROM renkou_view_relay")
