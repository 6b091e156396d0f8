"""Operator tasks against a real Kafka and PostgreSQL: rebuild, verify and swap on a live, still-ingesting stack;
resumable replays; row diffs; hash-chain audits with tampering; dead-letter re-drive; status.

References are built as in ``test_projector.py``: the same log projected once, cleanly, in a database of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import signal
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]
import pytest
from aiokafka import AIOKafkaProducer

from projections.resident.reads import read_checkpoints
from services.db.dsn import asyncpg_dsn
from services.db.engine import driver_connection, make_engine
from services.infra.ports import free_port
from services.operations.audit import verify_chains
from services.operations.base import OperationError
from services.operations.replay import replay
from services.operations.schemas import DEFAULT_SHADOW, projection_schemas
from services.operations.swap import swap
from services.operations.verify import verify
from services.residents.views import load_views
from tests.support.infra import Endpoints, kafka_options
from tests.support.operations import (
    RENKOU,
    cli_env,
    execute,
    fetch,
    history,
    projected,
    records_for,
    reference,
    renkou,
    topic,
    write_access_log,
)
from tests.support.projector import (
    AS_OF,
    publish,
    running_projector,
    settings_for,
    snapshot,
    spawn_projector,
    wait_caught_up,
)
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration


async def test_replay_verify_swap_on_a_live_ingesting_stack_loses_and_duplicates_nothing(
    infra: Endpoints, databases: Databases, tmp_path: Path
) -> None:
    items = history(150, seed=31)
    expected = await reference(infra, databases, items)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    records = records_for(ns, items)
    head, middle, tail = (
        records[: len(records) * 4 // 10],
        records[len(records) * 4 // 10 : len(records) * 8 // 10],
        records[len(records) * 8 // 10 :],
    )
    await publish(infra.kafka_bootstrap, head)
    citizens = sorted({k.decode() for _, k, _ in items})
    watched = random.Random(1).sample(citizens, 40)

    projector = spawn_projector(settings, free_port(), str(tmp_path / "projector.log"))
    # Readers as the query API reads: long-lived pooled connections, asyncpg's statement cache warm.
    engine = make_engine(db, pool_size=2, application_name="test-reader")
    reader_errors: list[str] = []
    reads = 0
    swapped = asyncio.Event()
    stop = asyncio.Event()
    published_at: dict[str, int] = {}
    sent = 0

    async def read_forever() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                async with driver_connection(engine) as conn:
                    await load_views(conn, watched, AS_OF)
                reads += 1
            except Exception as exc:  # any error a reader sees fails the test
                reader_errors.append(repr(exc))
            await asyncio.sleep(0.005)

    async def ingest() -> None:
        # Keep ingesting, slowly, until the swap is done, then send the rest.
        nonlocal sent
        producer = AIOKafkaProducer(**kafka_options(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            queue = list(middle)
            while queue and not swapped.is_set():
                chunk, queue = queue[:15], queue[15:]
                await asyncio.gather(*[await producer.send(t, value=v, key=k) for t, k, v in chunk])
                sent += len(chunk)
                await asyncio.sleep(0.05)
            for start in range(0, len(queue + tail), 500):
                chunk = (queue + tail)[start : start + 500]
                await asyncio.gather(*[await producer.send(t, value=v, key=k) for t, k, v in chunk])
                sent += len(chunk)
        finally:
            await producer.stop()

    readers = [asyncio.create_task(read_forever()) for _ in range(2)]
    ingesting = asyncio.create_task(ingest())
    try:
        report = await replay(settings, workers=1, batch_size=500)
        assert report.created and report.events > 0
        checked = await verify(settings, limit=5)
        assert checked.identical, [d.describe() for d in checked.comparison.differences]
        assert checked.events >= report.events
        published_at["swap_start"] = sent
        swap_report = await swap(settings)
        published_at["swap_end"] = sent
        swapped.set()
        await ingesting
        await wait_caught_up(settings, wait_s=180)
    finally:
        stop.set()
        await asyncio.gather(*readers, return_exceptions=True)
        await engine.dispose()
        projector.terminate()
        projector.wait(timeout=60)
    assert reader_errors == []
    assert reads > 50
    assert 0 < published_at["swap_start"] < len(middle), "the swap was meant to happen while ingesting"

    # The projector continued in the renamed-in schema: everything equals the clean reference run.
    assert await snapshot(db, ns) == expected
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        schemas = {s.name: s for s in await projection_schemas(conn)}
        assert swap_report.old_schema in schemas and DEFAULT_SHADOW not in schemas
        assert schemas["projection"].note.get("live") is True
        old = await read_checkpoints(conn, swap_report.old_schema)
        assert old == swap_report.checkpoints, "the old schema stopped where the swap took over"
        assert (await verify_chains(conn)).intact
    finally:
        await conn.close()
    log = (tmp_path / "projector.log").read_text()
    assert "Traceback" not in log, log[-3000:]


async def test_a_killed_replay_resumes_and_verifies_identical(
    infra: Endpoints, databases: Databases, tmp_path: Path
) -> None:
    settings, db = await projected(infra, databases, history(200, seed=32))
    total = sum((await read_checkpoints_of(db)).values())
    # Two worker processes, small batches; the replay is killed mid-way (SIGKILL: no cleanup of its own).
    proc = await asyncio.create_subprocess_exec(
        RENKOU,
        "replay",
        "--workers",
        "2",
        "--batch",
        "100",
        env=cli_env(settings),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    workers: list[psutil.Process] = []
    try:
        for _ in range(1200):
            workers = psutil.Process(proc.pid).children(recursive=True)
            if await shadow_progress(db) > total // 4:
                break
            await asyncio.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    # Its orphaned worker processes notice, stop after their current batch (rolled back) and leave.
    assert len(workers) >= 2
    for _ in range(300):
        if not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
            break
        await asyncio.sleep(0.1)
    else:
        for w in workers:
            w.kill()
        raise AssertionError("worker processes outlived the killed replay")
    stopped_at = await shadow_progress(db)
    assert 0 < stopped_at < total, f"the replay was meant to be killed mid-way ({stopped_at} of {total})"

    resumed = await renkou(settings, "replay", "--workers", "2")
    assert resumed.code == 0, resumed.stderr
    assert f"resumed at {stopped_at:,}" in resumed.stdout
    assert await shadow_progress(db) == total
    checked = await renkou(settings, "verify", "--json")
    assert checked.code == 0, checked.stdout + checked.stderr
    body = json.loads(checked.stdout)
    assert body["identical"] is True and body["events"] == total
    assert {t["table"] for t in body["tables"]} >= {"event_archive", "sections", "household_members", "checkpoints"}
    assert "view_outbox" not in {t["table"] for t in body["tables"]}


async def read_checkpoints_of(database_url: str, schema: str = "projection") -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await read_checkpoints(conn, schema)
    finally:
        await conn.close()


async def shadow_progress(database_url: str, shadow: str = DEFAULT_SHADOW) -> int:
    """Events the shadow has projected (0 while it does not exist yet)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{shadow}.checkpoints"):
            return 0
        return int(await conn.fetchval(f"SELECT coalesce(sum(next_offset), 0) FROM {shadow}.checkpoints"))
    finally:
        await conn.close()


async def test_verify_names_differing_rows_and_swap_refuses_until_it_passes(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(40, seed=33))
    await replay(settings)
    sections = await fetch(
        db, "SELECT citizen_id FROM projection.sections WHERE department = 'public_security' ORDER BY 1 LIMIT 2"
    )
    changed, removed = sections[0]["citizen_id"], sections[1]["citizen_id"]
    await execute(
        db,
        "UPDATE projection.sections SET event_count = event_count + 1 "
        f"WHERE citizen_id = '{changed}' AND department = 'public_security'",
        f"DELETE FROM projection.household_members WHERE citizen_id = '{removed}'",
    )
    result = await renkou(settings, "verify")
    assert result.code == 1
    assert result.error_lines == [result.error_lines[-1]] and result.error_lines[-1].startswith("error: 2 rows differ")
    assert f"{changed} sections (citizen_id={changed}, department=public_security): event_count:" in result.stdout
    assert f"{removed} household_members (citizen_id={removed}): only in the rebuild" in result.stdout

    as_json = json.loads((await renkou(settings, "verify", "--json")).stdout)
    assert as_json["identical"] is False
    diffs = {(d["table"], d["citizen_id"], d["kind"]) for d in as_json["differences"]}
    assert diffs == {("sections", changed, "changed"), ("household_members", removed, "only_shadow")}
    columns = next(d["columns"] for d in as_json["differences"] if d["table"] == "sections")
    assert [c["column"] for c in columns] == ["event_count"]
    assert columns[0]["live"] == columns[0]["shadow"] + 1

    refused = await renkou(settings, "swap")
    assert refused.code == 1 and "found differences" in refused.error_lines[-1]
    with pytest.raises(OperationError, match="found differences"):
        await swap(settings)


# --- audit ------------------------------------------------------------------------------------------------------
async def test_audit_verify_finds_and_names_a_tampered_archive_row_and_access_log_row(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(30, seed=34))
    chains = await fetch(
        db,
        "SELECT DISTINCT ON (citizen_id) citizen_id, department FROM projection.sections WHERE chain_seq >= 3 "
        "ORDER BY citizen_id, department LIMIT 2",
    )
    victim, department = chains[0]["citizen_id"], chains[0]["department"]
    reader = chains[1]["citizen_id"]
    await write_access_log(db, reader, 4)
    await write_access_log(db, victim, 2)

    clean = await renkou(settings, "audit", "verify")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert "every chain verifies" in clean.stdout and "access log: 6 links in 2 chains" in clean.stdout

    # Tampering as a superuser would: the append-only trigger disabled, one archived event rewritten.
    original = (
        await fetch(
            db,
            "SELECT body, hash FROM projection.event_archive "
            "WHERE citizen_id = $1 AND department = $2 AND chain_seq = 2",
            victim,
            department,
        )
    )[0]
    forged = bytes(original["body"]).replace(b'"occurred_at":"', b'"occurred_at":"1', 1)
    assert forged != bytes(original["body"])
    await execute(
        db,
        "ALTER TABLE projection.event_archive DISABLE TRIGGER event_archive_append_only",
        f"UPDATE projection.event_archive SET body = '\\x{forged.hex()}'::bytea "
        f"WHERE citizen_id = '{victim}' AND department = '{department}' AND chain_seq = 2",
        "ALTER TABLE projection.event_archive ENABLE TRIGGER event_archive_append_only",
        # ... and one access-log entry's purpose changed (the rule: hash covers the body, so the body is edited).
        "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only",
        "UPDATE access_log SET body = "
        "convert_to(replace(convert_from(body, 'UTF8'), 'public_service', 'marketing'), 'UTF8'), "
        f"purpose = 'marketing' WHERE citizen_id = '{reader}' AND chain_seq = 3",
        "ALTER TABLE access_log ENABLE TRIGGER access_log_append_only",
    )
    broken = await renkou(settings, "audit", "verify")
    assert broken.code == 1
    assert broken.error_lines == ["error: 2 broken chain links"]
    archive_line = next(line for line in broken.stdout.splitlines() if "archive" in line and "broken" in line)
    found = bytes(original["hash"]).hex()[:16]
    assert f"archive {victim}/{department} #2: hash is not sha256(prev_hash || body)" in archive_line
    assert f"found {found}…" in archive_line
    access_line = next(line for line in broken.stdout.splitlines() if "access_log" in line)
    assert f"access_log {reader} #3: hash is not sha256(prev_hash || body)" in access_line

    as_json = json.loads((await renkou(settings, "audit", "verify", "--json")).stdout)
    assert as_json["intact"] is False and as_json["broken_total"] == 2
    problems = {(b["log"], b["citizen_id"], b["department"], b["position"], b["problem"]) for b in as_json["broken"]}
    assert problems == {("archive", victim, department, 2, "hash"), ("access_log", reader, None, 3, "hash")}
    link = next(b for b in as_json["broken"] if b["log"] == "archive")
    recomputed = hashlib.sha256(
        bytes(
            (
                await fetch(
                    db,
                    "SELECT prev_hash FROM projection.event_archive WHERE citizen_id = $1 AND department = $2 "
                    "AND chain_seq = 2",
                    victim,
                    department,
                )
            )[0]["prev_hash"]
        )
        + forged
    ).hexdigest()
    assert link["expected"] == recomputed[:16] + "…" and link["found"] == found + "…"

    # One resident's chains only.
    only_victim = await renkou(settings, "audit", "verify", victim)
    assert only_victim.code == 1 and "access_log" not in only_victim.stdout.replace("access log:", "")
    other = next(
        c["citizen_id"] for c in await fetch(db, "SELECT citizen_id FROM projection.sections ORDER BY 1 DESC LIMIT 1")
    )
    assert (await renkou(settings, "audit", "verify", other)).code == 0

    # A deleted row is a sequence gap and a broken link; a forged head is named too.
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        await conn.execute("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only")
        await conn.execute("DELETE FROM access_log WHERE citizen_id = $1 AND chain_seq = 1", victim)
        await conn.execute("ALTER TABLE access_log ENABLE TRIGGER access_log_append_only")
        await conn.execute(
            "UPDATE projection.sections SET chain_head = $3 WHERE citizen_id = $1 AND department = $2",
            victim,
            department,
            b"\x01" * 32,
        )
        report = await verify_chains(conn, victim)
    finally:
        await conn.close()
    kinds = {(b.log, b.position, b.problem) for b in report.broken}
    assert {("access_log", 2, "sequence"), ("access_log", 2, "link"), ("archive", 2, "hash")} <= kinds
    assert any(b.problem == "head" and b.log == "archive" for b in report.broken)


async def test_audit_timeline_lists_one_residents_archived_events_in_order(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(20, seed=35))
    cid = (await fetch(db, "SELECT citizen_id FROM projection.sections GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"))[
        0
    ]["citizen_id"]
    archived = await fetch(db, "SELECT event_id::text, hash FROM projection.event_archive WHERE citizen_id = $1", cid)
    result = await renkou(settings, "audit", "timeline", cid, "--json")
    assert result.code == 0, result.stderr
    events = json.loads(result.stdout)["events"]
    assert {e["event_id"] for e in events} == {r["event_id"] for r in archived}
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    first = events[0]
    assert set(first["coordinates"]) == {"topic", "partition", "offset"}
    assert first["coordinates"]["topic"].startswith(settings.topic_namespace)
    assert first["event"]["event_id"] == first["event_id"] and first["recorded_at"]
    by_chain: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_chain.setdefault(e["department"], []).append(e)
    for chain in by_chain.values():
        chain.sort(key=lambda e: e["chain_seq"])
        assert chain[0]["prev_hash"] == "00" * 32
        for before, after in itertools.pairwise(chain):
            assert after["prev_hash"] == before["hash"]
    table = await renkou(settings, "audit", "timeline", cid)
    assert table.code == 0 and f"{cid}: {len(events)} archived events" in table.stdout


# --- dead letters -----------------------------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_dlq_redrive_of_a_fixed_record_lands_exactly_once(
    infra: Endpoints, databases: Databases, tmp_path: Path
) -> None:
    items = history(12, seed=36)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    by_department: dict[str, list[tuple[str, bytes, bytes]]] = {}
    for item in items:
        by_department.setdefault(item[0], []).append(item)
    # Held back from the history: a social-security event sent to the health topic (the wrong topic), and a
    # health event whose payload was corrupted (an unknown field). Both are dead letters, both can be fixed.
    misrouted = by_department["social_security"][-1]
    broken_source = by_department["health"][-1]
    broken_event = json.loads(broken_source[2])
    broken_event["payload"]["unexpected"] = "field"
    rest = [i for i in items if i not in (misrouted, broken_source)]
    poison = [
        (topic(ns, "health"), misrouted[1], misrouted[2]),
        (topic(ns, "health"), broken_source[1], json.dumps(broken_event, ensure_ascii=False).encode()),
    ]
    await publish(infra.kafka_bootstrap, [*records_for(ns, rest), *poison])
    async with running_projector(settings):
        await wait_caught_up(settings)
        listed = json.loads((await renkou(settings, "dlq", "list", "--json")).stdout)
        assert listed["total"] == 2
        letters = {d["event_id"]: d for d in listed["dead_letters"]}
        wrong_topic = letters[json.loads(misrouted[2])["event_id"]]
        invalid = letters[broken_event["event_id"]]
        assert "belongs to social_security" in wrong_topic["reason"] and invalid["redriven_at"] is None

        shown = await renkou(settings, "dlq", "show", invalid["coordinates"], "--json")
        assert shown.code == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["value"]["payload"]["unexpected"] == "field" and "unexpected" in detail["reason"]
        assert detail["headers"]["renkou.dlq.rejected_by"] == "projector"
        assert detail["key"] == broken_source[1].decode()

        # The original record goes to its own department's topic; the corrupted one needs its fixed version.
        first = await renkou(settings, "dlq", "redrive", wrong_topic["coordinates"])
        assert first.code == 0, first.stderr
        assert topic(ns, "social_security") in first.stdout
        unfixed = await renkou(settings, "dlq", "redrive", invalid["coordinates"])
        assert unfixed.code == 2 and "still not a valid event" in unfixed.error_lines[-1]
        other_id = dict(json.loads(broken_source[2]), event_id=str(uuid.uuid4()))
        wrong = _write(tmp_path / "other-id.json", json.dumps(other_id).encode())
        changed_id = await renkou(settings, "dlq", "redrive", invalid["coordinates"], "--value-file", str(wrong))
        assert changed_id.code == 2 and "keep the event_id" in changed_id.error_lines[-1]
        fix = _write(tmp_path / "fixed.json", broken_source[2])
        fixed = await renkou(settings, "dlq", "redrive", invalid["coordinates"], "--value-file", str(fix))
        assert fixed.code == 0, fixed.stderr
        await wait_caught_up(settings)
        # Re-driving again is refused, then, forced, published once more — and still applied once.
        again = await renkou(settings, "dlq", "redrive", wrong_topic["coordinates"])
        assert again.code == 1 and "--again" in again.error_lines[-1]
        await execute(
            db, f"UPDATE projection.dead_letters SET redriven_at = NULL WHERE event_id = '{wrong_topic['event_id']}'"
        )
        applied = await renkou(settings, "dlq", "redrive", wrong_topic["coordinates"])
        assert applied.code == 1 and "already applied" in applied.error_lines[-1]
        await publish(infra.kafka_bootstrap, [(topic(ns, "social_security"), misrouted[1], misrouted[2])])
        await wait_caught_up(settings)
    for event_id in (wrong_topic["event_id"], invalid["event_id"]):
        rows = await fetch(db, "SELECT count(*) AS n FROM projection.event_archive WHERE event_id = $1::uuid", event_id)
        assert rows[0]["n"] == 1, event_id
    pending = json.loads((await renkou(settings, "dlq", "list", "--pending", "--json")).stdout)
    assert pending["total"] == 1  # the one whose mark the test cleared; the other is marked re-driven
    # Same log, every record applied once: the view equals the clean projection of the history.
    expected = await reference(infra, databases, [*rest, misrouted, broken_source])
    assert (await snapshot(db, ns))["views"] == expected["views"]


async def test_status_shows_checkpoints_lag_dead_letters_and_schemas(infra: Endpoints, databases: Databases) -> None:
    items = history(10, seed=37)
    settings, _ = await projected(infra, databases, items)
    poison = (topic(settings.topic_namespace, "health"), b"11010519491231002X", b"not json")
    await publish(infra.kafka_bootstrap, [poison, *records_for(settings.topic_namespace, items[:25])])
    result = await renkou(settings, "status", "--json")
    assert result.code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["lag"] == 26
    assert sum(p["log_end"] for p in body["partitions"]) == len(items) + 26
    assert sum(p["checkpoint"] for p in body["partitions"]) == len(items)
    assert len(body["partitions"]) == 16
    assert body["dead_letters"] == {"total": 0, "pending": 0}
    assert body["consumer_group"] == settings.topic_namespace + "renkou-projector.resident_view"
    assert any(p["group_committed"] is not None for p in body["partitions"])
    assert body["last_batch_at"] is not None
    async with running_projector(settings):
        await wait_caught_up(settings)
    after = json.loads((await renkou(settings, "status", "--json")).stdout)
    assert after["lag"] == 0 and after["dead_letters"] == {"total": 1, "pending": 1}
    assert [s["role"] for s in after["schemas"]] == ["live"]
    human = await renkou(settings, "status")
    assert human.code == 0 and "lag: 0 events behind the log end" in human.stdout
    assert "dead letters: 1 pending, 1 in all" in human.stdout


async def test_a_shadow_has_the_live_schemas_tables_keys_indexes_and_triggers_under_the_same_names(
    infra: Endpoints, databases: Databases
) -> None:
    settings, db = await projected(infra, databases, history(5, seed=38))
    await replay(settings)
    shape = (
        "SELECT c.relname AS tbl, ic.relname AS name, replace(pg_get_indexdef(i.indexrelid), $1 || '.', '') AS def "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
        "UNION ALL SELECT c.relname, t.tgname, replace(pg_get_triggerdef(t.oid), $1 || '.', '') FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND NOT t.tgisinternal "
        "UNION ALL SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
        "ORDER BY 1, 2, 3"
    )
    live = [tuple(r) for r in await fetch(db, shape, "projection")]
    shadow = [tuple(r) for r in await fetch(db, shape, DEFAULT_SHADOW)]
    assert shadow == live
    assert any(name == "event_archive_append_only" for _, name, _ in shadow)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await execute(db, f"DELETE FROM {DEFAULT_SHADOW}.event_archive")


async def test_verify_holds_when_health_and_public_security_disagree_about_a_birth(
    infra: Endpoints, databases: Databases
) -> None:
    """The live projector meets the child's registration first and the mother's certificate later; a rebuild
    meets both in one batch, health's topic first. When the two departments disagree about the child's name,
    the stored certificate must not depend on that order (public security's registration is authoritative).
    """
    from events.examples import example_events

    registered = dict(example_events()["birth.registered"], event_id=str(uuid.uuid4()))
    certified = dict(example_events()["birth.certified"], event_id=str(uuid.uuid4()))
    certified["payload"] = {**certified["payload"], "child_name": "李木阳"}  # health wrote the name differently
    assert registered["payload"]["birth_certificate_no"] == certified["payload"]["certificate_no"]
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)

    def record(event: dict[str, Any]) -> tuple[str, bytes, bytes]:
        department = event["source"]["department"]
        return topic(ns, department), event["citizen_id"].encode(), json.dumps(event, ensure_ascii=False).encode()

    async with running_projector(settings):
        await publish(infra.kafka_bootstrap, [record(registered)])
        await wait_caught_up(settings)
        await publish(infra.kafka_bootstrap, [record(certified)])
        await wait_caught_up(settings)
    [live] = await fetch(db, "SELECT child_name, child_citizen_id FROM projection.birth_certificates")
    assert (live["child_name"], live["child_citizen_id"]) == ("李沐阳", registered["citizen_id"])
    checked = await verify(settings)
    assert checked.identical, [d.describe() for d in checked.comparison.differences]
    mother = (await load_views_of(db, [certified["citizen_id"]]))[certified["citizen_id"]]
    assert [c.get("name") for c in mother["family"]["children"]] == ["李沐阳"]


async def load_views_of(database_url: str, ids: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await load_views(conn, ids, AS_OF)
    finally:
        await conn.close()
