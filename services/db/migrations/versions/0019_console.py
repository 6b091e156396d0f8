"""The web console (CONTRACT §14): its accounts, and the record of every action taken in it.

``console_accounts``: operators and auditors who log in to the console, each with an argon2id hash of a password
``renkou operators add`` printed once. Accounts are made and removed by the owner role (an administrator's act,
like a migration); the console itself — which connects as ``renkou_operator`` — may only read them. (Where the
console's machine also holds the owner's password, as a single-machine ``renkou up`` does for its jobs, that
separates connections, not trust: see the README.)

``console_actions``: who did what in the console, when, with which outcome — logins (failed ones too), re-drives,
replays, verifies, swaps, grants added and revoked, timelines and access-log searches opened, citizens' logins.
Append-only like the access log: the operator role may INSERT and SELECT, a trigger refuses UPDATE, DELETE and
TRUNCATE even to the owner.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE console_accounts (
            name           text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]{1,62}$'),
            role           text        NOT NULL CHECK (role IN ('operator', 'auditor')),
            password_hash  text        NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("REVOKE ALL ON console_accounts FROM PUBLIC")
    op.execute("GRANT SELECT ON console_accounts TO renkou_operator")
    op.execute("""
        CREATE TABLE console_actions (
            id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            acted_at  timestamptz NOT NULL DEFAULT now(),
            actor     text        NOT NULL,
            role      text        NOT NULL,
            action    text        NOT NULL,
            target    text,
            outcome   text        NOT NULL,
            detail    jsonb       NOT NULL DEFAULT '{}'::jsonb
        )
    """)
    op.execute("CREATE INDEX console_actions_time ON console_actions (acted_at)")
    op.execute("""
        CREATE TRIGGER console_actions_append_only BEFORE UPDATE OR DELETE ON console_actions
        FOR EACH ROW EXECUTE FUNCTION renkou_refuse_change()
    """)
    op.execute("""
        CREATE TRIGGER console_actions_no_truncate BEFORE TRUNCATE ON console_actions
        FOR EACH STATEMENT EXECUTE FUNCTION renkou_refuse_change()
    """)
    op.execute("REVOKE ALL ON console_actions FROM PUBLIC")
    op.execute("GRANT SELECT, INSERT ON console_actions TO renkou_operator")


def downgrade() -> None:
    op.execute("DROP TABLE console_actions")
    op.execute("DROP TABLE console_accounts")
