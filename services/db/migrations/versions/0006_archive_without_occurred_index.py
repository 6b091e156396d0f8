"""Archive: drop ``event_archive_occurred``, an index no query needs.

Every read of the archive by citizen (as-of and known-at reconstruction, ``audit timeline``, the events
endpoint, eligibility) selects all of one citizen's rows through the primary key ``(citizen_id, department,
chain_seq)`` and orders a few dozen rows by time afterwards; the ``(citizen_id, occurred_at)`` index was only
ever written, once per archived event, in the projector's hot path.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "projection"


def upgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.event_archive_occurred")


def downgrade() -> None:
    op.execute(f"CREATE INDEX event_archive_occurred ON {SCHEMA}.event_archive (citizen_id, occurred_at)")
