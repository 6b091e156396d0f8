"""One person, several numbers (CONTRACT §12): the alias projection's table.

``projection.number_links``: for each superseded citizen ID (a previous number, a duplicate registration's
number), the number it leads to, from ``identity.number_changed`` and ``identity.duplicate_merged``. One row per
superseded number; the later link stands (by date, then event ID), whatever order the events arrived in. Reads
follow the links to the person's current number and combine the sections of all the person's numbers
(``projections.resident.aliases``). The index on ``new_citizen_id`` finds a person's earlier numbers.
Privileges as for every projected table (``renkou_grant_projection``); a replay's shadow schema gets the table
like every other.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE projection.number_links (
            old_citizen_id  text  PRIMARY KEY,
            new_citizen_id  text  NOT NULL,
            linked_on       date  NOT NULL,
            event_id        uuid  NOT NULL,
            kind            text  NOT NULL,
            reason          text,
            CHECK (old_citizen_id <> new_citizen_id)
        )
    """)
    op.execute("CREATE INDEX number_links_new ON projection.number_links (new_citizen_id)")
    op.execute("SELECT renkou_grant_projection('projection')")


def downgrade() -> None:
    op.execute("DROP TABLE projection.number_links")
