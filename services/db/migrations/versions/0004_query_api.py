"""Query API: the access-log append as one server-side function (one round trip, one transaction per request).

``renkou_append_access_log`` appends one entry per citizen to ``access_log`` and moves each citizen's chain head
in ``access_log_heads``, after checking — in the same transaction — that the consumer's grant is neither revoked
nor expired. The query API calls it once per request and only answers after it committed.

The chain is the archive's: ``hash = sha256(prev_hash || body)``, genesis ``prev_hash`` = 32 zero bytes; ``body``
(computed by the caller) is the canonical JSON of the entry, exactly the bytes hashed. Each citizen's head row
is locked with ``SELECT … FOR UPDATE`` (created first if missing), so concurrent reads of one citizen serialise
and the chain never forks; a batch locks its citizens in citizen-ID order, so two batches cannot deadlock.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION renkou_append_access_log(
            p_citizen_ids text[],
            p_bodies      bytea[],
            p_request_id  uuid,
            p_consumer    text,
            p_purpose     text,
            p_sections    text[],
            p_endpoint    text,
            p_accessed_at timestamptz
        ) RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE
            entry   record;
            seq     integer;
            prev    bytea;
            link    bytea;
            written integer := 0;
        BEGIN
            -- A revocation takes effect at once, even where the caller still holds the grant in a cache.
            PERFORM 1 FROM consumer_grants
             WHERE name = p_consumer AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > p_accessed_at);
            IF NOT FOUND THEN
                RAISE EXCEPTION 'the grant of % is revoked or expired', p_consumer USING ERRCODE = 'RKG01';
            END IF;
            FOR entry IN
                SELECT u.citizen_id, u.body FROM unnest(p_citizen_ids, p_bodies) AS u(citizen_id, body)
                ORDER BY u.citizen_id
            LOOP
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
                VALUES (entry.citizen_id, seq + 1, p_request_id, p_consumer, p_purpose, p_sections, p_endpoint,
                        p_accessed_at, entry.body, prev, link);
                written := written + 1;
            END LOOP;
            RETURN written;
        END $$
    """)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS renkou_append_access_log(text[], bytea[], uuid, text, text, text[], text, timestamptz)"
    )
