"""Archive: drop ``event_archive_coordinates``, an index no query needs.

The archive is read by citizen (the primary key) and by ``event_id`` (its unique key: deduplication, dead-letter
redrive); nothing looks an archived event up by its Kafka coordinates, which every row still carries. The
``(topic, kafka_partition, kafka_offset)`` index was only ever written, once per archived event, in the
projector's hot path.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "projection"


def upgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.event_archive_coordinates")


def downgrade() -> None:
    op.execute(
        f"CREATE INDEX event_archive_coordinates ON {SCHEMA}.event_archive (topic, kafka_partition, kafka_offset)"
    )
