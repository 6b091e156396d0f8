"""When the log learnt of each archived event (``event_archive.logged_at``): the Kafka record's timestamp, which
the department topics take from the broker at append (``message.timestamp.type=LogAppendTime``,
``infra/topics.toml``). A replay reads the same records and writes the same times, so a figure cut at an instant
of the log (``known_at`` statistics and reports) is the same before and after a rebuild. Rows archived before
this revision have none; readers take their ``archived_at`` in its place.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE projection.event_archive ADD COLUMN logged_at timestamptz")
    op.execute(
        "COMMENT ON COLUMN projection.event_archive.logged_at IS "
        "'the Kafka record timestamp: when the log learnt of the event (LogAppendTime on department topics)'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE projection.event_archive DROP COLUMN logged_at")
