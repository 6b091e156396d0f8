"""Grants per purpose (CONTRACT §11): the sections a consumer may read, purpose by purpose; its view topic.

``consumer_grants.purpose_sections`` maps each purpose to its sections. Existing grants are carried over
unchanged in what they allow: every purpose they had gets every section they had (the old form's meaning).
``sections`` and ``purposes`` stay as the union and the keys, which the access-log functions' grant check reads.
``view_topic`` names the purpose whose sections go to the consumer's own view topic (none by default).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE consumer_grants ADD COLUMN purpose_sections jsonb")
    op.execute("""
        UPDATE consumer_grants g SET purpose_sections = (
            SELECT jsonb_object_agg(p, to_jsonb(g.sections)) FROM unnest(g.purposes) AS p
        )
    """)
    op.execute("ALTER TABLE consumer_grants ALTER COLUMN purpose_sections SET NOT NULL")
    op.execute("""
        ALTER TABLE consumer_grants ADD CONSTRAINT consumer_grants_purposes_match
        CHECK (jsonb_typeof(purpose_sections) = 'object')
    """)
    op.execute("ALTER TABLE consumer_grants ADD COLUMN view_topic text")
    op.execute("""
        ALTER TABLE consumer_grants ADD CONSTRAINT consumer_grants_view_topic_purpose
        CHECK (view_topic IS NULL OR purpose_sections ? view_topic)
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE consumer_grants DROP COLUMN view_topic")
    op.execute("ALTER TABLE consumer_grants DROP COLUMN purpose_sections")
