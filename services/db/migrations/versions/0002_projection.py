"""The resident-view projection: event archive, per-department sections, family and household tables,
checkpoints, dead letters and the view outbox — all in the schema ``projection``.

Everything in this schema is derived from the Kafka log and can be rebuilt from offset 0 into a shadow schema
of the same shape (``CREATE TABLE … (LIKE projection.… INCLUDING ALL)``), verified and swapped in.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "projection"


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (a superuser can still disable it, which is why
    # every row also carries a link of a per-stream SHA-256 hash chain that `renkou audit verify` recomputes).
    op.execute("""
        CREATE OR REPLACE FUNCTION renkou_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    op.execute(f"""
        CREATE TABLE {SCHEMA}.event_archive (
            citizen_id      text        NOT NULL,
            department      text        NOT NULL,
            chain_seq       integer     NOT NULL CHECK (chain_seq >= 1),
            event_id        uuid        NOT NULL,
            event_type      text        NOT NULL,
            schema_version  integer     NOT NULL,
            occurred_at     timestamptz NOT NULL,
            recorded_at     timestamptz NOT NULL,
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            body            bytea       NOT NULL,
            prev_hash       bytea       NOT NULL,
            hash            bytea       NOT NULL,
            archived_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (citizen_id, department, chain_seq),
            UNIQUE (event_id)
        )
    """)
    op.execute(f"CREATE INDEX event_archive_occurred ON {SCHEMA}.event_archive (citizen_id, occurred_at)")
    op.execute(
        f"CREATE INDEX event_archive_coordinates ON {SCHEMA}.event_archive (topic, kafka_partition, kafka_offset)"
    )
    for when in ("UPDATE OR DELETE", "TRUNCATE"):
        level = "ROW" if when != "TRUNCATE" else "STATEMENT"
        name = "event_archive_append_only" if level == "ROW" else "event_archive_no_truncate"
        op.execute(f"""
            CREATE TRIGGER {name} BEFORE {when} ON {SCHEMA}.event_archive
            FOR EACH {level} EXECUTE FUNCTION renkou_refuse_change()
        """)
    # One row per (citizen, department): each section is written only by its owning department's events, so
    # projector instances consuming different department topics never write the same row.
    op.execute(f"""
        CREATE TABLE {SCHEMA}.sections (
            citizen_id    text        NOT NULL,
            department    text        NOT NULL,
            state         jsonb       NOT NULL,
            event_count   integer     NOT NULL,
            last_event_at timestamptz NOT NULL,
            chain_seq     integer     NOT NULL,
            chain_head    bytea       NOT NULL,
            PRIMARY KEY (citizen_id, department)
        )
    """)
    op.execute(f"""
        CREATE INDEX sections_hukou_region ON {SCHEMA}.sections ((state -> 'hukou' ->> 'region_code'))
        WHERE department = 'public_security'
    """)
    op.execute(f"""
        CREATE TABLE {SCHEMA}.household_members (
            citizen_id     text NOT NULL PRIMARY KEY,
            household_id   text NOT NULL,
            household_type text NOT NULL,
            relationship   text NOT NULL,
            region_code    text NOT NULL
        )
    """)
    op.execute(f"CREATE INDEX household_members_household ON {SCHEMA}.household_members (household_id)")
    op.execute(f"""
        CREATE TABLE {SCHEMA}.parent_links (
            child_citizen_id  text NOT NULL,
            role              text NOT NULL CHECK (role IN ('mother', 'father')),
            department        text NOT NULL,
            parent_citizen_id text NOT NULL,
            event_id          uuid NOT NULL,
            PRIMARY KEY (child_citizen_id, role, department)
        )
    """)
    op.execute(f"CREATE INDEX parent_links_parent ON {SCHEMA}.parent_links (parent_citizen_id)")
    # Health certifies a birth with the mother as subject (the child has no number yet); public security
    # registers the child with the certificate number. Each side fills its own columns, whichever comes first.
    op.execute(f"""
        CREATE TABLE {SCHEMA}.birth_certificates (
            certificate_no       text NOT NULL PRIMARY KEY,
            mother_citizen_id    text,
            father_citizen_id    text,
            child_name           text,
            child_sex            text,
            birth_date           date,
            certified_event_id   uuid,
            child_citizen_id     text,
            registered_event_id  uuid
        )
    """)
    op.execute(f"CREATE INDEX birth_certificates_mother ON {SCHEMA}.birth_certificates (mother_citizen_id)")
    op.execute(f"CREATE INDEX birth_certificates_father ON {SCHEMA}.birth_certificates (father_citizen_id)")
    op.execute(f"CREATE INDEX birth_certificates_child ON {SCHEMA}.birth_certificates (child_citizen_id)")
    # (projection, topic, partition) -> the next offset to apply. Written in the same transaction as the rows a
    # batch produced: this, not Kafka's committed offset, is where a projector resumes.
    op.execute(f"""
        CREATE TABLE {SCHEMA}.checkpoints (
            projection      text        NOT NULL,
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            next_offset     bigint      NOT NULL CHECK (next_offset >= 0),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (projection, topic, kafka_partition)
        )
    """)
    op.execute(f"""
        CREATE TABLE {SCHEMA}.dead_letters (
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            reason          text        NOT NULL,
            record_key      bytea,
            record_value    bytea,
            event_id        text,
            rejected_at     timestamptz NOT NULL DEFAULT now(),
            redriven_at     timestamptz,
            PRIMARY KEY (topic, kafka_partition, kafka_offset)
        )
    """)
    # Citizens whose view changed and still has to be published to population.resident_view.v1.
    op.execute(f"""
        CREATE TABLE {SCHEMA}.view_outbox (
            citizen_id  text        NOT NULL PRIMARY KEY,
            enqueued_at timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS renkou_refuse_change()")
