"""Migration 0011 rebuilds ``birth_certificates`` from the archive with the projector's own merge rule.

A database at 0010 holds the archived birth events of two mothers whose certificates share a number (the old
key merged them into one row) and a registration that names no mother; after the upgrade the table holds one
row per certificate and mother, exactly the records ``projections.resident.family`` folds from those events.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import date
from typing import Any

import asyncpg
import pytest

from events import Event, Payload, make_citizen_id, parse_event
from events.examples import example_event
from projections.resident.family import BirthCertificate, CertificateRecord, certificate_record, family_facts
from projections.resident.family import merge_certificates as merge
from projections.resident.store import certificate_of
from services.db.dsn import asyncpg_dsn
from services.db.migrate import upgrade
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

MOTHER_A = make_citizen_id("510107", date(1990, 3, 8), 42)
MOTHER_B = make_citizen_id("630102", date(1992, 6, 1), 44)
CHILD_A = make_citizen_id("510107", date(2024, 5, 1), 15)
CHILD_X = make_citizen_id("510107", date(2024, 6, 1), 17)


def _event(event_type: str, citizen_id: str, recorded_at: str, **payload: Any) -> dict[str, Any]:
    raw = example_event(event_type)
    raw.update(event_id=str(uuid.uuid4()), citizen_id=citizen_id, occurred_at=recorded_at, recorded_at=recorded_at)
    raw["payload"] = {**raw["payload"], **payload}
    return raw


def _history() -> list[dict[str, Any]]:
    return [
        _event("birth.certified", MOTHER_A, "2024-05-03T10:00:00+08:00", certificate_no="Q1", child_name="李木阳"),
        # Health corrects its certificate later; the registration still decides the name.
        _event("birth.certified", MOTHER_A, "2024-05-09T10:00:00+08:00", certificate_no="Q1", child_name="李木杨"),
        _event("birth.certified", MOTHER_B, "2024-05-04T10:00:00+08:00", certificate_no="Q1", child_name="马小花"),
        _event(
            "birth.registered",
            CHILD_A,
            "2024-05-20T10:00:00+08:00",
            mother_citizen_id=MOTHER_A.lower(),  # as a department might write it; parse_event normalises it
            birth_certificate_no=" Q1 ",
        ),
        _event(
            "birth.registered", CHILD_X, "2024-06-20T10:00:00+08:00", mother_citizen_id=None, birth_certificate_no="Q2"
        ),
    ]


async def test_certificates_are_rebuilt_per_mother_by_the_merge_rule(databases: Databases) -> None:
    url = await databases.create(revision="0010")
    history = _history()
    events: list[Event[Payload]] = [parse_event(e) for e in history]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for seq, (raw, event) in enumerate(zip(history, events, strict=True), start=1):
            await conn.execute(
                "INSERT INTO projection.event_archive (citizen_id, department, chain_seq, event_id, event_type, "
                "schema_version, occurred_at, recorded_at, topic, kafka_partition, kafka_offset, body, prev_hash, "
                "hash) VALUES ($1, $2, $3::int, $4, $5, 1, $6, $7, 't', 0, $3::bigint, $8, $9, $9)",
                event.citizen_id,
                event.department,
                seq,
                event.event_id,
                event.event_type,
                event.occurred_at,
                event.recorded_at,
                json.dumps({k: v for k, v in raw.items()}, ensure_ascii=False).encode(),
                bytes(32),
            )
        # What the old key made of it: one row for both mothers.
        await conn.execute(
            "INSERT INTO projection.birth_certificates (certificate_no, mother_citizen_id, child_name) "
            "VALUES ('Q1', $1, '马小花')",
            MOTHER_B,
        )
    finally:
        await conn.close()

    await upgrade(url)

    expected: dict[tuple[str, str], CertificateRecord] = {}
    for event in events:
        for fact in family_facts(event):
            if isinstance(fact, BirthCertificate):
                record = certificate_record(fact, event.event_id, event.recorded_at)
                if record is not None:
                    known = expected.get(record.key)
                    expected[record.key] = record if known is None else merge(known, record)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT * FROM projection.birth_certificates ORDER BY certificate_no, mother_citizen_id"
        )
        value_size = await conn.fetchval(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'projection' "
            "AND table_name = 'dead_letters' AND column_name = 'value_size'"
        )
    finally:
        await conn.close()
    assert sorted(expected) == [("Q1", MOTHER_A), ("Q1", MOTHER_B)]
    stored = {(r["certificate_no"], r["mother_citizen_id"]): certificate_of(r) for r in rows}
    assert stored == expected
    merged = ["father_citizen_id", "child_name", "child_sex", "birth_date", "child_citizen_id"]
    merged += ["registered_event_id", "certified_event_id"]
    for r in rows:  # what the readers use: the columns the two departments' statements make together
        record = expected[(r["certificate_no"], r["mother_citizen_id"])]
        assert {c: r[c] for c in merged} == {c: getattr(record, c) for c in merged}
    mine = expected[("Q1", MOTHER_A)]
    assert (mine.child_name, mine.child_citizen_id) == ("李沐阳", CHILD_A)
    assert mine.certification is not None and mine.certification.child_name == "李木杨"
    assert value_size == "bigint"
    assert functools.reduce(merge, [expected[("Q1", MOTHER_A)]] * 2) == mine
