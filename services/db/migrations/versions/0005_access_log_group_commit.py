"""Access log: many reads' entries appended in one call (group commit).

``renkou_append_access_logs`` is ``renkou_append_access_log`` (0004) for entries of several requests at once —
each row with its own request, consumer, purpose, sections (comma-separated), endpoint and time — so that the
query API commits the reads that arrive together in one transaction and one WAL flush. Rows are appended in
citizen-ID order (then in the order given), each citizen's head row locked as in 0004, so concurrent calls
cannot deadlock and every chain stays linear. A consumer whose grant is revoked or expired has none of its rows
written; their positions (1-based) are returned, and the other rows are appended and committed as usual.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION renkou_append_access_logs(
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
            seq     integer;
            prev    bytea;
            link    bytea;
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
                SELECT h.chain_seq, h.head INTO seq, prev FROM access_log_heads h
                 WHERE h.citizen_id = entry.citizen_id FOR UPDATE;
                IF NOT FOUND THEN
                    INSERT INTO access_log_heads (citizen_id, chain_seq, head)
                    VALUES (entry.citizen_id, 0, decode(repeat('00', 32), 'hex'))
                    ON CONFLICT (citizen_id) DO NOTHING;
                    SELECT h.chain_seq, h.head INTO seq, prev FROM access_log_heads h
                     WHERE h.citizen_id = entry.citizen_id FOR UPDATE;
                END IF;
                link := sha256(prev || entry.body);
                UPDATE access_log_heads SET chain_seq = seq + 1, head = link WHERE citizen_id = entry.citizen_id;
                INSERT INTO access_log (citizen_id, chain_seq, request_id, consumer, purpose, sections, endpoint,
                                        accessed_at, body, prev_hash, hash)
                VALUES (entry.citizen_id, seq + 1, entry.request_id, entry.consumer, entry.purpose,
                        string_to_array(entry.sections, ','), entry.endpoint, entry.accessed_at, entry.body,
                        prev, link);
            END LOOP;
            RETURN refused;
        END $$
    """)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS renkou_append_access_logs(text[], bytea[], uuid[], text[], text[], text[], text[], "
        "timestamptz[])"
    )
