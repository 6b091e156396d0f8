"""The projection's tables read back from PostgreSQL into ``memory.Tables``: the contract suite compares what
``PostgresProjectionStore`` wrote with what ``MemoryProjectionStore`` holds, row for row."""

from __future__ import annotations

import json
from dataclasses import replace

import asyncpg

from projections.resident.aliases import NumberLink
from projections.resident.batch import ArchiveRow, DeadLetterRow, Household, ParentLinkRow, SectionRow
from projections.resident.memory import Tables
from projections.resident.reads import PROJECTION
from projections.resident.store import ARCHIVE_COLUMNS, certificate_of
from projections.resident.tables import DEFAULT_SCHEMA


async def postgres_tables(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> Tables:
    t = Tables()
    for r in await conn.fetch(f"SELECT {', '.join(ARCHIVE_COLUMNS)} FROM {schema}.event_archive"):
        row = ArchiveRow(*r.values())
        t.archive[(row.citizen_id, row.department, row.chain_seq)] = row
        t.archived_ids[row.event_id] = row.body
    for r in await conn.fetch(
        f"SELECT citizen_id, department, state::text, event_count, last_event_at, chain_seq, chain_head "
        f"FROM {schema}.sections"
    ):
        t.sections[(r[0], r[1])] = SectionRow(*r.values())
    for r in await conn.fetch(
        f"SELECT child_citizen_id, role, department, parent_citizen_id, event_id FROM {schema}.parent_links"
    ):
        t.parent_links[(r[0], r[1], r[2])] = ParentLinkRow(*r.values())
    for r in await conn.fetch(
        f"SELECT old_citizen_id, new_citizen_id, linked_on, event_id::text, kind, reason FROM {schema}.number_links"
    ):
        t.number_links[r[0]] = NumberLink(*r.values())
    for r in await conn.fetch(f"SELECT * FROM {schema}.birth_certificates"):
        record = certificate_of(r)
        if record is not None:
            t.certificates[record.key] = record
    for r in await conn.fetch(
        f"SELECT citizen_id, household_id, household_type, relationship, region_code FROM {schema}.household_members"
    ):
        t.households[r[0]] = Household(*r.values())
    for r in await conn.fetch(
        f"SELECT topic, kafka_partition, kafka_offset, reason, record_key, record_value, event_id, value_size "
        f"FROM {schema}.dead_letters"
    ):
        t.dead_letters[(r[0], r[1], r[2])] = DeadLetterRow(*r.values())
    t.view_outbox = {r[0] for r in await conn.fetch(f"SELECT citizen_id FROM {schema}.view_outbox")}
    for r in await conn.fetch(
        f"SELECT topic, kafka_partition, next_offset FROM {schema}.checkpoints WHERE projection = $1", PROJECTION
    ):
        t.checkpoints[(r[0], r[1])] = r[2]
    return t


def comparable(tables: Tables) -> Tables:
    """``tables`` with each section's state as one JSON text whatever its spacing and key order (jsonb keeps
    neither)."""
    copy = tables.copy()
    for key, section in copy.sections.items():
        copy.sections[key] = replace(section, state=json.dumps(json.loads(section.state), sort_keys=True))
    return copy
