"""Grants and the audited access log (query API); department tokens and idempotency records (gateway).

These live in the ``public`` schema: unlike ``projection``, none of it can be rebuilt from the Kafka log, so a
rebuild-and-swap of the projection never touches them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A downstream consumer's grant: which view sections, for which stated purposes, until when.
    op.execute("""
        CREATE TABLE consumer_grants (
            name        text        PRIMARY KEY,
            token_hash  bytea       NOT NULL UNIQUE,
            sections    text[]      NOT NULL,
            purposes    text[]      NOT NULL,
            expires_at  timestamptz,
            created_at  timestamptz NOT NULL DEFAULT now(),
            revoked_at  timestamptz
        )
    """)
    # Every read of a resident, recorded before the answer leaves; append-only and hash-chained per citizen.
    op.execute("""
        CREATE TABLE access_log (
            citizen_id   text        NOT NULL,
            chain_seq    integer     NOT NULL CHECK (chain_seq >= 1),
            request_id   uuid        NOT NULL,
            consumer     text        NOT NULL,
            purpose      text        NOT NULL,
            sections     text[]      NOT NULL,
            endpoint     text        NOT NULL,
            accessed_at  timestamptz NOT NULL,
            body         bytea       NOT NULL,
            prev_hash    bytea       NOT NULL,
            hash         bytea       NOT NULL,
            PRIMARY KEY (citizen_id, chain_seq)
        )
    """)
    op.execute("CREATE INDEX access_log_time ON access_log (citizen_id, accessed_at)")
    op.execute("CREATE INDEX access_log_request ON access_log (request_id)")
    op.execute("""
        CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
        FOR EACH ROW EXECUTE FUNCTION renkou_refuse_change()
    """)
    op.execute("""
        CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
        FOR EACH STATEMENT EXECUTE FUNCTION renkou_refuse_change()
    """)
    # The head of each citizen's access-log chain; its row lock serialises concurrent reads of one citizen.
    op.execute("""
        CREATE TABLE access_log_heads (
            citizen_id text    PRIMARY KEY,
            chain_seq  integer NOT NULL,
            head       bytea   NOT NULL
        )
    """)
    # Gateway tokens of the departments (only a hash is stored; the token is shown once).
    op.execute("""
        CREATE TABLE department_tokens (
            token_hash  bytea       PRIMARY KEY,
            department  text        NOT NULL
                        CHECK (department IN ('public_security', 'education', 'social_security', 'health')),
            label       text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            revoked_at  timestamptz
        )
    """)
    # What the gateway accepted, by event_id: the same event again gets the original coordinates (200),
    # other content under the same event_id a 409.
    op.execute("""
        CREATE TABLE gateway_events (
            event_id        uuid        PRIMARY KEY,
            content_hash    bytea       NOT NULL,
            department      text        NOT NULL,
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            accepted_at     timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    for table in ("gateway_events", "department_tokens", "access_log_heads", "access_log", "consumer_grants"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
