"""Signed anchors of the hash chains against an attacker with full write access to PostgreSQL (CONTRACT §10).

The attacker here can do anything to the database — disable the append-only triggers, rewrite rows and
recompute every later hash, move the stored heads, edit the anchored heads — but holds neither the signing
key nor write access to Kafka. Each attack must fail ``renkou audit verify`` (exit 1) with the broken chain,
position and kind named; the recomputed-hash attacks pass the plain chain check (``--chains-only``), which is
the finding this guards against. A real projector projects real Kafka records and publishes the anchors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.anchor.keys import trusted_public_key
from services.anchor.record import ChainHead, SignedAnchor, bucket_of, key_id, leaf_digest, leaf_of, parse_anchor
from services.anchor.service import AnchorService
from services.anchor.topic import anchor_topic, read_anchors
from services.db.dsn import asyncpg_dsn
from services.operations.audit import verify_chains
from services.operations.replay import replay
from services.operations.swap import swap
from services.operations.verify import verify
from services.settings import Settings
from tests.support.infra import Endpoints, kafka_options
from tests.support.operations import (
    GENESIS,
    Result,
    execute,
    fetch,
    history,
    projected,
    renkou,
    write_access_log,
)
from tests.support.stack import Databases

pytestmark = pytest.mark.integration


# --- helpers -------------------------------------------------------------------------------------------------------
async def anchors_on_kafka(settings: Settings) -> list[SignedAnchor]:
    consumer = AIOKafkaConsumer(**kafka_options(settings.kafka_bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return [parse_anchor(p.value) for p in await read_anchors(consumer, anchor_topic(settings.topic_namespace))]
    finally:
        await consumer.stop()


async def anchor_now(settings: Settings, *, force: bool = True) -> SignedAnchor:
    """What ``renkou audit anchor --force`` does, in process."""
    service = AnchorService.from_settings(settings)
    try:
        outcome = await service.anchor_once("manual", force=force, wait_lock_s=30)
    finally:
        await service.close()
    assert outcome.published and outcome.signed is not None, outcome
    return outcome.signed


async def publish_raw(settings: Settings, value: bytes) -> None:
    producer = AIOKafkaProducer(**kafka_options(settings.kafka_bootstrap), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(anchor_topic(settings.topic_namespace), value=value, key=b"resident_view")
    finally:
        await producer.stop()


async def a_chain(db: str, min_seq: int) -> tuple[str, str, int]:
    row = (
        await fetch(
            db,
            "SELECT citizen_id, department, chain_seq FROM projection.sections WHERE chain_seq >= $1 "
            "ORDER BY citizen_id, department LIMIT 1",
            min_seq,
        )
    )[0]
    return row["citizen_id"], row["department"], row["chain_seq"]


async def rehash_rewrite(db: str, citizen_id: str, department: str, seq: int, change: Callable[[bytes], bytes]) -> None:
    """Rewrite row ``seq`` of an archive chain, recompute every later link and move the stored head: carefully."""
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        rows = await conn.fetch(
            "SELECT chain_seq, body FROM projection.event_archive WHERE citizen_id = $1 AND department = $2 "
            "ORDER BY chain_seq",
            citizen_id,
            department,
        )
        async with conn.transaction():
            await conn.execute("ALTER TABLE projection.event_archive DISABLE TRIGGER event_archive_append_only")
            prev = GENESIS
            for r in rows:
                body = change(bytes(r["body"])) if r["chain_seq"] == seq else bytes(r["body"])
                link = hashlib.sha256(prev + body).digest()
                await conn.execute(
                    "UPDATE projection.event_archive SET body = $4, prev_hash = $5, hash = $6 "
                    "WHERE citizen_id = $1 AND department = $2 AND chain_seq = $3",
                    citizen_id,
                    department,
                    r["chain_seq"],
                    body,
                    prev,
                    link,
                )
                prev = link
            await conn.execute("ALTER TABLE projection.event_archive ENABLE TRIGGER event_archive_append_only")
            await conn.execute(
                "UPDATE projection.sections SET chain_head = $3 WHERE citizen_id = $1 AND department = $2",
                citizen_id,
                department,
                prev,
            )
    finally:
        await conn.close()


def lines_with(result: Result, text: str) -> list[str]:
    return [line.strip() for line in result.stdout.splitlines() if text in line]


async def verify_json(settings: Settings, *args: str) -> dict[str, Any]:
    result = await renkou(settings, "audit", "verify", "--json", *args)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def findings(report: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["log"], f["problem"], f["citizen_id"], f["department"], f["position"]) for f in report["findings"]}


# --- a clean run ---------------------------------------------------------------------------------------------------
async def test_the_projector_publishes_signed_anchors_and_a_clean_audit_passes_against_them(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(25, seed=61))
    published = await anchors_on_kafka(settings)
    assert published, "the projector published no anchor"
    trusted, _ = trusted_public_key(settings)
    latest = published[-1]
    assert latest.signature_problem(trusted) is None and latest.key_id == key_id(trusted)
    assert [a.anchor.seq for a in published] == list(range(1, len(published) + 1))
    sections = await fetch(db, "SELECT count(*) AS n, sum(chain_seq) AS links FROM projection.sections")
    assert latest.anchor.logs["archive"].chains == sections[0]["n"]
    assert latest.anchor.logs["archive"].links == sections[0]["links"]
    stored = await fetch(db, "SELECT topic, kafka_partition, next_offset FROM projection.checkpoints")
    assert latest.anchor.checkpoint_map() == {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in stored}

    citizens = [r["citizen_id"] for r in await fetch(db, "SELECT citizen_id FROM projection.sections LIMIT 2")]
    await write_access_log(db, citizens[0], 3)
    await write_access_log(db, citizens[1], 5)
    made = await renkou(settings, "audit", "anchor")
    assert made.code == 0 and f"anchor #{latest.anchor.seq + 1} at " in made.stdout, made.stdout + made.stderr
    again = await renkou(settings, "audit", "anchor")
    assert again.code == 0 and "nothing to anchor: no chain moved" in again.stdout, again.stdout + again.stderr

    clean = await renkou(settings, "audit", "verify", "--log")
    assert clean.code == 0, clean.stdout + clean.stderr
    seq = latest.anchor.seq + 1
    assert f"every chain verifies against anchor #{seq} and matches the log" in clean.stdout
    assert f"anchor #{seq} (" in clean.stdout and "pins" in clean.stdout and "and 2 access-log chains" in clean.stdout
    report = await verify_json(settings)
    assert report["intact"] is True and report["anchor"]["anchor"]["seq"] == seq
    assert report["anchor"]["anchor"]["chains"]["access_log"] == 2
    assert report["anchor"]["anchor"]["links"]["access_log"] == 8
    one = await renkou(settings, "audit", "verify", citizens[1], "--log")
    assert one.code == 0, one.stdout + one.stderr


# --- rewritten rows ------------------------------------------------------------------------------------------------
async def test_a_row_rewritten_with_every_later_hash_recomputed_is_named_and_never_anchored_over(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(30, seed=62))
    victim, department, last = await a_chain(db, 3)
    await rehash_rewrite(db, victim, department, 2, lambda b: b.replace(b'"occurred_at":"', b'"occurred_at":"1', 1))

    # The finding this guards against: the chains alone still verify.
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        assert (await verify_chains(conn)).intact
    finally:
        await conn.close()
    assert (await renkou(settings, "audit", "verify", "--chains-only")).code == 0

    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1, broken.stdout + broken.stderr
    assert broken.error_lines == ["error: 2 problems against the anchor"], broken.stderr
    anchored = lines_with(broken, f"archive {victim}/{department} #{last}: rewritten")
    assert anchored and "a row at or before" in anchored[0], broken.stdout
    located = lines_with(broken, f"archive {victim}/{department} #2: rewritten")
    assert located and "its body is not the bytes of the log record" in located[0], broken.stdout

    with_log = await renkou(settings, "audit", "verify", "--log")
    assert with_log.code == 1
    assert with_log.error_lines == ["error: 2 problems against the anchor; 1 difference from the log"]
    assert len(lines_with(with_log, f"archive {victim}/{department} #2: rewritten: its body")) == 2

    # Anchoring again does not make the rewrite anchored: the builder holds the chain at its signed head.
    held = await anchor_now(settings)
    assert held.anchor.held_total == 1
    assert (held.anchor.held[0].citizen_id, held.anchor.held[0].department) == (victim, department)
    assert "no longer holds the anchored link" in held.anchor.held[0].problem
    report = (await verify_json(settings))["anchor"]
    assert report["anchor"]["seq"] == held.anchor.seq
    assert ("archive", "rewritten", victim, department, last) in findings(report)
    assert ("archive", "rewritten", victim, department, 2) in findings(report)


async def test_a_removed_access_log_tail_with_the_head_rewound_is_named(infra: Endpoints, databases: Databases) -> None:
    settings, db = await projected(infra, databases, history(10, seed=63))
    reader = (await fetch(db, "SELECT citizen_id FROM projection.sections LIMIT 1"))[0]["citizen_id"]
    await write_access_log(db, reader, 5)
    anchor = await anchor_now(settings)
    await execute(
        db,
        "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only",
        f"DELETE FROM access_log WHERE citizen_id = '{reader}' AND chain_seq > 3",
        "ALTER TABLE access_log ENABLE TRIGGER access_log_append_only",
        "UPDATE access_log_heads h SET chain_seq = 3, head = a.hash FROM access_log a "
        f"WHERE h.citizen_id = '{reader}' AND a.citizen_id = h.citizen_id AND a.chain_seq = 3",
    )
    assert (await renkou(settings, "audit", "verify", "--chains-only")).code == 0  # consistent, to the chains

    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1, broken.stdout + broken.stderr
    assert broken.error_lines == ["error: 1 problem against the anchor"]
    assert lines_with(broken, f"access_log {reader} #5: removed tail") == [
        f"broken access_log {reader} #5: removed tail: anchor #{anchor.anchor.seq} pinned it up to #5; "
        "it now ends at #3 (#4–#5 removed)"
    ]

    # The careful attacker also rewinds the anchored head kept beside the chains: its bucket no longer matches.
    await execute(
        db,
        "UPDATE audit_anchor_heads h SET chain_seq = 3, head = a.hash FROM access_log a "
        f"WHERE h.log = 'access_log' AND h.citizen_id = '{reader}' AND a.citizen_id = h.citizen_id "
        "AND a.chain_seq = 3",
    )
    report = (await verify_json(settings))["anchor"]
    assert report["intact"] is False
    altered = [f for f in report["findings"] if f["problem"] == "altered_heads"]
    assert [(f["log"], f["citizen_id"]) for f in altered] == [("access_log", reader)], report["findings"]
    assert altered[0]["detail"].startswith(
        f"leaf {leaf_of(reader):04x}: the anchored heads kept in public.audit_anchor_heads for {reader} are not "
        f"the ones anchor #{anchor.anchor.seq} signed"
    )
    bucket = bucket_of(reader)
    # The projector does not build on it: with nothing moved there, the bucket keeps its signed digest ...
    again = await anchor_now(settings)
    assert again.anchor.logs["access_log"].digests[bucket] == anchor.anchor.logs["access_log"].digests[bucket]
    assert (await renkou(settings, "audit", "verify")).code == 1
    # ... and when that chain moves on, the whole bucket is held at it.
    await write_access_log(db, reader, 1)
    held = await anchor_now(settings)
    assert [(h.log, h.bucket) for h in held.anchor.held] == [("access_log", bucket)]
    assert held.anchor.logs["access_log"].digests[bucket] == anchor.anchor.logs["access_log"].digests[bucket]
    assert (await renkou(settings, "audit", "verify")).code == 1

    # The most careful attacker also recomputes the leaf digest kept for the edited heads: the bucket is named.
    entries = [
        ChainHead(r["citizen_id"], r["department"], r["chain_seq"], bytes(r["head"]))
        for r in await fetch(
            db, "SELECT * FROM audit_anchor_heads WHERE log = 'access_log' AND leaf = $1", leaf_of(reader)
        )
    ]
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        await conn.execute(
            "UPDATE audit_anchor_leaves SET digest = $2 WHERE log = 'access_log' AND leaf = $1",
            leaf_of(reader),
            leaf_digest("access_log", leaf_of(reader), entries),
        )
    finally:
        await conn.close()
    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1
    assert lines_with(broken, "anchored heads altered") == [
        f"broken access_log: anchored heads altered: bucket {bucket:02x}: the anchored heads and leaf digests kept "
        f"in the database are not the ones anchor #{held.anchor.seq} signed (1 chain filed there now); a chain of "
        "this bucket may have been rewritten together with its anchored head"
    ], broken.stdout


async def test_anchored_heads_deleted_from_the_database_are_a_rollback_and_nothing_is_anchored_over_them(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(6, seed=65))
    before = (await anchors_on_kafka(settings))[-1].anchor.seq
    await execute(db, "DELETE FROM audit_anchor_heads", "DELETE FROM audit_anchor_latest")
    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1
    rolled = lines_with(broken, "anchored state rolled back")
    assert rolled and "but the database keeps no anchor" in rolled[0], broken.stdout
    refused = await renkou(settings, "audit", "anchor", "--force")
    assert refused.code == 1
    assert "no anchor: the anchored heads in the database belong to anchor #none" in refused.error_lines[0]
    # An operator who restored the database on purpose starts the anchored state afresh, on the record.
    rebased = await renkou(settings, "audit", "anchor", "--rebase")
    assert rebased.code == 0, rebased.stdout + rebased.stderr
    latest = (await anchors_on_kafka(settings))[-1]
    assert latest.anchor.reason == "rebase" and latest.anchor.seq == before + 1
    clean = await renkou(settings, "audit", "verify")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert f"note: anchor #{before + 1} re-based the anchored state" in clean.stdout, clean.stdout


# --- added entries -------------------------------------------------------------------------------------------------
async def test_an_archive_row_added_at_a_position_the_anchor_covers_is_named(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(12, seed=66))
    victim, department, last = await a_chain(db, 1)
    donor = (
        await fetch(
            db,
            "SELECT topic, kafka_partition, kafka_offset, body, event_id FROM projection.event_archive "
            "WHERE department = $1 AND citizen_id <> $2 LIMIT 1",
            department,
            victim,
        )
    )[0]
    head = (
        await fetch(
            db,
            "SELECT hash FROM projection.event_archive WHERE citizen_id = $1 AND department = $2 AND chain_seq = $3",
            victim,
            department,
            last,
        )
    )[0]["hash"]
    body = bytes(donor["body"]).replace(b'"citizen_id":"', b'"citizen_id":"x', 1)
    link = hashlib.sha256(bytes(head) + body).digest()
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        await conn.execute(
            "INSERT INTO projection.event_archive (citizen_id, department, chain_seq, event_id, event_type, "
            "schema_version, occurred_at, recorded_at, topic, kafka_partition, kafka_offset, body, prev_hash, hash) "
            "SELECT $1, $2, $3, gen_random_uuid(), event_type, schema_version, occurred_at, recorded_at, topic, "
            "kafka_partition, kafka_offset, $4, $5, $6 FROM projection.event_archive WHERE event_id = $7",
            victim,
            department,
            last + 1,
            body,
            bytes(head),
            link,
            donor["event_id"],
        )
        await conn.execute(
            "UPDATE projection.sections SET chain_seq = $3, chain_head = $4 WHERE citizen_id = $1 AND department = $2",
            victim,
            department,
            last + 1,
            link,
        )
    finally:
        await conn.close()
    assert (await renkou(settings, "audit", "verify", "--chains-only")).code == 0

    broken = await renkou(settings, "audit", "verify", "--log")
    assert broken.code == 1, broken.stdout + broken.stderr
    where = f"{donor['topic']}[{donor['kafka_partition']}]@{donor['kafka_offset']}"
    added = lines_with(broken, f"archive {victim}/{department} #{last + 1}: added entry")
    assert added and f"archived from {where}, below the anchor's checkpoint" in added[0], broken.stdout
    assert f"pins it up to #{last}" in added[0]
    logged = lines_with(broken, f"archive {victim}/{department} #{last + 1}: ")
    assert any(f"the log record {where}" in line for line in logged), broken.stdout


# --- records without a row ---------------------------------------------------------------------------------------
async def test_the_log_check_explains_dead_letters_and_re_sent_events_and_names_a_record_whose_row_is_gone(
    infra: Endpoints, databases: Databases
) -> None:
    items = history(6, seed=73)
    department, key, value = items[0]
    # A record that cannot be applied (a dead letter) and an event sent again (applied once, at its first record).
    again = [(department, key, b"{not json"), (department, key, value)]
    settings, db = await projected(infra, databases, [*items, *again])
    clean = await renkou(settings, "audit", "verify", "--log")
    assert clean.code == 0, clean.stdout + clean.stderr

    letters = await fetch(db, "SELECT topic, kafka_partition, kafka_offset FROM projection.dead_letters")
    assert len(letters) == 1, letters
    await execute(db, "DELETE FROM projection.dead_letters")
    broken = await renkou(settings, "audit", "verify", "--log")
    assert broken.code == 1, broken.stdout + broken.stderr
    where = f"{letters[0]['topic']}[{letters[0]['kafka_partition']}]@{letters[0]['kafka_offset']}"
    named = lines_with(broken, f"the log record {where} (event without an id)")
    assert len(named) == 1 and "nor a dead letter" in named[0], broken.stdout
    assert len(lines_with(broken, "the log record ")) == 1, broken.stdout  # the re-sent event is still explained


# --- forged anchors ------------------------------------------------------------------------------------------------
async def test_an_anchor_signed_by_another_key_or_altered_is_named_as_forged(
    infra: Endpoints, databases: Databases
) -> None:
    settings, _ = await projected(infra, databases, history(8, seed=64))
    genuine = (await anchors_on_kafka(settings))[-1]
    assert (await renkou(settings, "audit", "verify")).code == 0

    # A later anchor, signed by a key of the attacker's: say every chain were empty.
    impostor = Ed25519PrivateKey.generate()
    forged = replace(genuine.anchor, seq=genuine.anchor.seq + 1, previous=genuine.digest(), reason="manual")
    await publish_raw(settings, forged.sign(impostor).to_bytes())
    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1, broken.stdout + broken.stderr
    trusted, _ = trusted_public_key(settings)
    line = lines_with(broken, "anchor: forged anchor:")
    assert len(line) == 1, broken.stdout
    assert f"(anchor #{genuine.anchor.seq + 1}): signed by key {key_id(impostor.public_key())}, " in line[0]
    assert f"not the trusted key {key_id(trusted)}" in line[0]
    assert f"anchor #{genuine.anchor.seq} (" in broken.stdout  # the chains are checked against the genuine one

    # The genuine anchor replayed with one number changed: the signature no longer covers it.
    data = json.loads(genuine.to_bytes())
    data["seq"] = genuine.anchor.seq + 2
    await publish_raw(settings, json.dumps(data).encode())
    report = (await verify_json(settings))["anchor"]
    details = [f["detail"] for f in report["findings"] if f["problem"] == "forged"]
    assert len(details) == 2 and any(
        f"(anchor #{genuine.anchor.seq + 2}): its signature does not verify with key {key_id(trusted)}" in d
        and "altered or forged" in d
        for d in details
    ), details


# --- swap ----------------------------------------------------------------------------------------------------------
async def test_a_swap_publishes_an_anchor_which_the_rebuilt_chains_extend(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(15, seed=67))
    before = (await anchors_on_kafka(settings))[-1]
    await write_access_log(db, (await fetch(db, "SELECT citizen_id FROM projection.sections LIMIT 1"))[0][0], 2)
    await replay(settings, workers=1, batch_size=500)
    assert (await verify(settings)).identical
    report = await swap(settings)
    assert report.anchor is not None and report.anchor.startswith(f"anchor #{before.anchor.seq + 1} at "), report
    latest = (await anchors_on_kafka(settings))[-1]
    assert latest.anchor.reason == "swap" and latest.anchor.held_total == 0
    assert latest.anchor.logs["archive"] == before.anchor.logs["archive"]  # the rebuild extends every chain
    clean = await renkou(settings, "audit", "verify", "--log")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert f"every chain verifies against anchor #{latest.anchor.seq}" in clean.stdout
