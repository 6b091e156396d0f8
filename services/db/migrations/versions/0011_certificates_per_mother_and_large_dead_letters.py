"""Birth certificates kept per certificate number *and mother*, merged order-independently; dead letters of records
too large to keep.

``birth_certificates`` was keyed by the certificate number alone, so two issuers' certificates with the same
number merged into one row, column by column in arrival order: two ``renkou simulate`` seeds (or two hospitals
numbering alike) gave a table that depended on which partition the projector read first, and ``renkou verify``
found differences after a rebuild. Now:

* the key is ``(certificate_no, mother_citizen_id)``: the mother is the subject of health's certificate and
  named by public security's registration (a registration that names no mother keeps no certificate row);
* beside the merged columns the readers use, the row keeps each department's latest statement
  (``registered_*``, ``certified_*``: recorded at, father, child's name, sex, birth date), so that the next
  statement merges by ``projections.resident.family.merge_certificates`` — the same result whatever the order.

The rows are rebuilt from the archive's ``birth.registered`` / ``birth.certified`` events with that rule (per
department the statement recorded last, then the larger ``event_id``; public security's values where both
speak, health's father where the registration names none), which is what a rebuild of the projection gives.

``dead_letters.value_size``: the size of a record's value when it was too large to keep (``record_value`` is
then NULL, the record stays in its topic at the row's coordinates).

The downgrade keeps one row per certificate number (the first mother) and drops the new columns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "projection"

_SIDES = ("registered", "certified")
_SIDE_COLUMNS = (
    ("at", "timestamptz"),
    ("father_citizen_id", "text"),
    ("child_name", "text"),
    ("child_sex", "text"),
    ("birth_date", "date"),
)
# Python's str.strip() of the Identifier and Name types, for the ASCII whitespace a raw body may carry.
_WS = r"E' \t\n\r\f\013'"


def upgrade() -> None:
    t = f"{SCHEMA}.birth_certificates"
    op.execute(
        f"ALTER TABLE {t} "
        + ", ".join(f"ADD COLUMN {side}_{name} {kind}" for side in _SIDES for name, kind in _SIDE_COLUMNS)
    )
    op.execute(f"DELETE FROM {t}")
    op.execute(f"ALTER TABLE {t} DROP CONSTRAINT birth_certificates_pkey")
    op.execute(f"""
        WITH said AS (
            SELECT event_id, recorded_at, citizen_id, event_type = 'birth.registered' AS registration,
                   convert_from(body, 'UTF8')::jsonb -> 'payload' AS p
              FROM {SCHEMA}.event_archive
             WHERE event_type IN ('birth.registered', 'birth.certified')
        ), stated AS (
            SELECT btrim(CASE WHEN registration THEN p ->> 'birth_certificate_no' ELSE p ->> 'certificate_no' END,
                         {_WS}) AS certificate_no,
                   CASE WHEN registration THEN upper(p ->> 'mother_citizen_id') ELSE citizen_id END AS mother,
                   registration, event_id, recorded_at,
                   upper(p ->> 'father_citizen_id') AS father,
                   btrim(CASE WHEN registration THEN p ->> 'name' ELSE p ->> 'child_name' END, {_WS}) AS child_name,
                   CASE WHEN registration THEN p ->> 'sex' ELSE p ->> 'child_sex' END AS child_sex,
                   (p ->> 'birth_date')::date AS birth_date,
                   CASE WHEN registration THEN citizen_id END AS child
              FROM said
        ), latest AS (
            SELECT DISTINCT ON (certificate_no, mother, registration) *
              FROM stated
             WHERE certificate_no IS NOT NULL AND mother IS NOT NULL
             ORDER BY certificate_no, mother, registration, recorded_at DESC, event_id DESC
        )
        INSERT INTO {t} (certificate_no, mother_citizen_id, father_citizen_id, child_name, child_sex, birth_date,
                         certified_event_id, child_citizen_id, registered_event_id,
                         registered_at, registered_father_citizen_id, registered_child_name, registered_child_sex,
                         registered_birth_date, certified_at, certified_father_citizen_id, certified_child_name,
                         certified_child_sex, certified_birth_date)
        SELECT k.certificate_no, k.mother, COALESCE(r.father, c.father), COALESCE(r.child_name, c.child_name),
               COALESCE(r.child_sex, c.child_sex), COALESCE(r.birth_date, c.birth_date),
               c.event_id, r.child, r.event_id,
               r.recorded_at, r.father, r.child_name, r.child_sex, r.birth_date,
               c.recorded_at, c.father, c.child_name, c.child_sex, c.birth_date
          FROM (SELECT DISTINCT certificate_no, mother FROM latest) k
          LEFT JOIN latest r ON r.registration AND r.certificate_no = k.certificate_no AND r.mother = k.mother
          LEFT JOIN latest c ON NOT c.registration AND c.certificate_no = k.certificate_no AND c.mother = k.mother
    """)
    op.execute(f"ALTER TABLE {t} ALTER COLUMN mother_citizen_id SET NOT NULL")
    op.execute(
        f"ALTER TABLE {t} ADD CONSTRAINT birth_certificates_pkey PRIMARY KEY (certificate_no, mother_citizen_id)"
    )
    op.execute(f"ALTER TABLE {SCHEMA}.dead_letters ADD COLUMN value_size bigint")


def downgrade() -> None:
    t = f"{SCHEMA}.birth_certificates"
    op.execute(f"ALTER TABLE {SCHEMA}.dead_letters DROP COLUMN value_size")
    op.execute(f"""
        DELETE FROM {t} d USING {t} k
         WHERE d.certificate_no = k.certificate_no AND d.mother_citizen_id > k.mother_citizen_id
    """)
    op.execute(f"ALTER TABLE {t} DROP CONSTRAINT birth_certificates_pkey")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN mother_citizen_id DROP NOT NULL")
    op.execute(f"ALTER TABLE {t} ADD CONSTRAINT birth_certificates_pkey PRIMARY KEY (certificate_no)")
    op.execute(
        f"ALTER TABLE {t} " + ", ".join(f"DROP COLUMN {side}_{name}" for side in _SIDES for name, _ in _SIDE_COLUMNS)
    )
