"""Access log: one entry's chain step as a function of its own, usable inside a read's own statement.

``renkou_access_log_append`` appends one entry to a citizen's chain (head row locked, link
``sha256(prev || body)``, head moved) and returns its ``chain_seq``. The query API's single live read calls it
from the statement that reads the resident (after checking the grant there, as ``renkou_append_access_logs``
does), so the view and its access-log entry are one round trip and one transaction: both happen or neither
does. ``renkou_append_access_logs`` (0005, the group commit of the other reads) now takes each step through
``renkou_access_log_append`` too, so there is one definition of a link.

Also drops ``access_log_time`` and ``access_log_request``: nothing reads the log by time or by request ID (the
endpoint and the audit walk each citizen's chain by the primary key), and each was written on every read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION renkou_access_log_append(
            p_citizen_id  text,
            p_body        bytea,
            p_request_id  uuid,
            p_consumer    text,
            p_purpose     text,
            p_sections    text[],
            p_endpoint    text,
            p_accessed_at timestamptz
        ) RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE
            seq  integer;
            prev bytea;
            link bytea;
        BEGIN
            -- The head row's lock orders concurrent appends to one chain; a citizen's first entry creates it.
            SELECT h.chain_seq, h.head INTO seq, prev FROM access_log_heads h
             WHERE h.citizen_id = p_citizen_id FOR UPDATE;
            IF NOT FOUND THEN
                INSERT INTO access_log_heads (citizen_id, chain_seq, head)
                VALUES (p_citizen_id, 0, decode(repeat('00', 32), 'hex'))
                ON CONFLICT (citizen_id) DO NOTHING;
                SELECT h.chain_seq, h.head INTO seq, prev FROM access_log_heads h
                 WHERE h.citizen_id = p_citizen_id FOR UPDATE;
            END IF;
            link := sha256(prev || p_body);
            UPDATE access_log_heads SET chain_seq = seq + 1, head = link WHERE citizen_id = p_citizen_id;
            INSERT INTO access_log (citizen_id, chain_seq, request_id, consumer, purpose, sections, endpoint,
                                    accessed_at, body, prev_hash, hash)
            VALUES (p_citizen_id, seq + 1, p_request_id, p_consumer, p_purpose, p_sections, p_endpoint,
                    p_accessed_at, p_body, prev, link);
            RETURN seq + 1;
        END $$
    """)
    # 0005's function, its loop now taking each step through the function above.
    op.execute("""
        CREATE OR REPLACE FUNCTION renkou_append_access_logs(
            p_citizen_ids text[],
            p_bodies      bytea[],
            p_request_ids uuid[],
            p_consumers   text[],
            p_purposes    text[],
            p_sections    text[],
            p_endpoints   text[],
            p_accessed_at timestamptz[]
        ) RETURNS integer[] LANGUAGE plpgsql AS $$
        DECLARE
            refused_consumers text[];
            refused integer[] := '{}';
            entry   record;
        BEGIN
            -- A revocation takes effect at once, even where the caller still holds the grant in a cache.
            SELECT coalesce(array_agg(DISTINCT u.consumer), '{}') INTO refused_consumers
              FROM unnest(p_consumers, p_accessed_at) AS u(consumer, accessed_at)
             WHERE NOT EXISTS (
                   SELECT 1 FROM consumer_grants g
                    WHERE g.name = u.consumer AND g.revoked_at IS NULL
                      AND (g.expires_at IS NULL OR g.expires_at > u.accessed_at));
            FOR entry IN
                SELECT u.* FROM unnest(p_citizen_ids, p_bodies, p_request_ids, p_consumers, p_purposes, p_sections,
                                       p_endpoints, p_accessed_at) WITH ORDINALITY
                       AS u(citizen_id, body, request_id, consumer, purpose, sections, endpoint, accessed_at, pos)
                ORDER BY u.citizen_id, u.pos
            LOOP
                IF entry.consumer = ANY(refused_consumers) THEN
                    refused := refused || entry.pos::integer;
                    CONTINUE;
                END IF;
                PERFORM renkou_access_log_append(entry.citizen_id, entry.body, entry.request_id, entry.consumer,
                                                 entry.purpose, string_to_array(entry.sections, ','),
                                                 entry.endpoint, entry.accessed_at);
            END LOOP;
            RETURN refused;
        END $$
    """)
    op.execute("DROP INDEX IF EXISTS access_log_time")
    op.execute("DROP INDEX IF EXISTS access_log_request")


def downgrade() -> None:
    op.execute("CREATE INDEX access_log_request ON access_log (request_id)")
    op.execute("CREATE INDEX access_log_time ON access_log (citizen_id, accessed_at)")
    # 0005's own definition, by 0005 itself: its downgrade drops the function, its upgrade creates it (Alembic
    # loads revisions by path; this imports that one as a module).
    revision_0005 = importlib.import_module("services.db.migrations.versions.0005_access_log_group_commit")
    revision_0005.downgrade()
    revision_0005.upgrade()
    op.execute(
        "DROP FUNCTION IF EXISTS renkou_access_log_append(text, bytea, uuid, text, text, text[], text, timestamptz)"
    )
