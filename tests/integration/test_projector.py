"""The projector against a real Kafka and PostgreSQL: order independence, duplicates, poison, crashes, rebalances.

Every test compares against a reference: the same log projected once, cleanly, in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.db.dsn import asyncpg_dsn
from services.dead_letters import REASON, SOURCE_OFFSET, SOURCE_TOPIC
from services.infra.ports import free_port
from services.operations.verify import verify
from services.simulator import simulate_bytes
from tests.support.infra import Endpoints, kafka_options
from tests.support.projector import (
    publish,
    running_projector,
    running_view_relay,
    settings_for,
    snapshot,
    spawn_projector,
    wait_caught_up,
)
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration


def _history(residents: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    return list(simulate_bytes(residents, seed=seed))


def _topic(namespace: str, department: str) -> str:
    return f"{namespace}population.{department}.v1"


def _records(namespace: str, history: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(_topic(namespace, d), k, v) for d, k, v in history]


async def _reference(infra: Endpoints, databases: Databases, history: list[tuple[str, bytes, bytes]]) -> dict[str, Any]:
    """The log projected once, cleanly: what every other run must equal."""
    ns = await create_namespace(infra)
    db = await databases.create()
    await publish(infra.kafka_bootstrap, _records(ns, history))
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    return await snapshot(db, ns)


async def test_department_interleaving_does_not_change_the_result(infra: Endpoints, databases: Databases) -> None:
    history = _history(80, seed=11)
    by_department: dict[str, list[tuple[str, bytes, bytes]]] = defaultdict(list)
    for record in history:
        by_department[record[0]].append(record)
    departments = sorted(by_department)
    # Order A: one department after the other. Order B: the reverse, round robin, one record each.
    order_a = [r for d in departments for r in by_department[d]]
    order_b: list[tuple[str, bytes, bytes]] = []
    queues = [list(by_department[d]) for d in reversed(departments)]
    while any(queues):
        for q in queues:
            if q:
                order_b.append(q.pop(0))
    snapshots = []
    for order in (order_a, order_b):
        ns = await create_namespace(infra)
        db = await databases.create()
        await publish(infra.kafka_bootstrap, _records(ns, order))
        settings = settings_for(infra.kafka_bootstrap, db, ns)
        async with running_projector(settings, max_records=97):
            await wait_caught_up(settings)
        snapshots.append(await snapshot(db, ns))
    assert len(snapshots[0]["views"]) >= 80
    assert len(snapshots[0]["archive"]) == len(history)
    assert snapshots[0] == snapshots[1]


async def test_two_simulated_cities_in_one_log_project_the_same_whatever_the_order(
    infra: Endpoints, databases: Databases
) -> None:
    """Two ``renkou simulate`` seeds number their birth certificates alike: the certificates of two mothers share
    numbers. Every table must still come out the same whatever the arrival order, and ``verify``'s rebuild equal."""
    history = _history(60, seed=1) + _history(60, seed=2)
    births = [json.loads(v) for d, _, v in history if d == "health" and b'"birth.certified"' in v]
    numbers = [b["payload"]["certificate_no"] for b in births]
    assert len(numbers) > len(set(numbers)), "the two seeds should share certificate numbers"
    by_department: dict[str, list[tuple[str, bytes, bytes]]] = defaultdict(list)
    for record in history:
        by_department[record[0]].append(record)
    forward = [r for d in sorted(by_department) for r in by_department[d]]
    backward = [r for d in sorted(by_department, reverse=True) for r in by_department[d]]
    snapshots = []
    for order in (forward, backward):
        ns = await create_namespace(infra)
        db = await databases.create()
        await publish(infra.kafka_bootstrap, _records(ns, order))
        settings = settings_for(infra.kafka_bootstrap, db, ns)
        async with running_projector(settings, max_records=89):
            await wait_caught_up(settings)
        snapshots.append(await snapshot(db, ns))
        checked = await verify(settings, limit=5)
        assert checked.identical, [d.describe() for d in checked.comparison.differences]
    assert len({(row[0], row[1]) for row in snapshots[0]["birth_certificates"]}) == len(
        set(zip(numbers, (b["citizen_id"] for b in births), strict=True))
    )
    assert snapshots[0] == snapshots[1]


async def test_duplicates_count_once_and_poison_goes_to_the_dead_letter_topic(
    infra: Endpoints, databases: Databases
) -> None:
    history = _history(40, seed=5)
    reference = await _reference(infra, databases, history)

    ns = await create_namespace(infra)
    db = await databases.create()
    records = _records(ns, history)
    first_valid = json.loads(history[0][2])
    altered = dict(first_valid, recorded_at="2026-01-01T00:00:00+08:00")  # same event_id, other content
    education = next(r for r in history if r[0] == "education")
    poison = [
        (_topic(ns, "health"), b"11010519491231002X", b"this is not json"),
        (_topic(ns, "health"), b"11010519491231002X", json.dumps({"event_id": "nope"}).encode()),
        (_topic(ns, "health"), education[1], education[2]),  # an education event on the health topic
        (_topic(ns, history[1][0]), b"11010519491231002X", history[1][2]),  # key is not the citizen_id
        (_topic(ns, "public_security"), b"x", None),  # a tombstone
        (_topic(ns, history[0][0]), history[0][1], json.dumps(altered, ensure_ascii=False).encode()),
    ]
    # Redelivery: the first 60 records once more, after everything else.
    mixed = records[:100] + poison[:3] + records[100:] + poison[3:] + records[:60]
    await publish(infra.kafka_bootstrap, mixed)
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings, max_records=50):
        await wait_caught_up(settings)
    result = await snapshot(db, ns)
    # Offsets of the real records moved (poison sits between them); the rest must be identical.
    assert result["views"] == reference["views"]
    assert [r[:4] + r[7:] for r in result["archive"]] == [r[:4] + r[7:] for r in reference["archive"]]

    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        letters = await conn.fetch("SELECT topic, kafka_offset, reason FROM projection.dead_letters ORDER BY 1, 2")
    finally:
        await conn.close()
    reasons = [r["reason"] for r in letters]
    assert len(letters) == len(poison)
    assert any("invalid event" in r and "JSON" in r for r in reasons)
    assert any("invalid event" in r and "event_id" in r for r in reasons)
    assert any("belongs to education" in r for r in reasons)
    assert any("record key" in r for r in reasons)
    assert any("tombstone" in r for r in reasons)
    assert any("different content" in r for r in reasons)

    consumer = AIOKafkaConsumer(
        f"{ns}population.dead_letter.v1",
        **kafka_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        dead: list[Any] = []
        while len(dead) < len(poison):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"only {len(dead)} dead letters on the topic"
            for recs in batch.values():
                dead.extend(recs)
    finally:
        await consumer.stop()
    values = {r.value for r in dead}
    assert {p[2] for p in poison} == values, "dead letters must be the records, untouched"
    for record in dead:
        headers = dict(record.headers)
        assert headers[REASON]
        assert headers[SOURCE_TOPIC].decode().startswith(ns)
        assert int(headers[SOURCE_OFFSET]) >= 0


async def test_archive_is_append_only_and_every_chain_link_verifies(
    infra: Endpoints, database_url: str, namespace: str
) -> None:
    history = _history(15, seed=3)
    await publish(infra.kafka_bootstrap, _records(namespace, history))
    settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
    async with running_projector(settings):
        await wait_caught_up(settings)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT citizen_id, department, chain_seq, body, prev_hash, hash "
            "FROM projection.event_archive ORDER BY citizen_id, department, chain_seq"
        )
        heads = {
            (r["citizen_id"], r["department"]): (r["chain_seq"], bytes(r["chain_head"]))
            for r in await conn.fetch("SELECT citizen_id, department, chain_seq, chain_head FROM projection.sections")
        }
        for statement in (
            "UPDATE projection.event_archive SET event_type = 'x'",
            "DELETE FROM projection.event_archive",
            "TRUNCATE projection.event_archive",
        ):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()
    assert len(rows) == len(history)
    prev: dict[tuple[str, str], tuple[int, bytes]] = {}
    for r in rows:
        key = (r["citizen_id"], r["department"])
        seq, link = prev.get(key, (0, bytes(32)))
        assert r["chain_seq"] == seq + 1
        assert bytes(r["prev_hash"]) == link
        assert bytes(r["hash"]) == hashlib.sha256(link + bytes(r["body"])).digest()
        prev[key] = (r["chain_seq"], bytes(r["hash"]))
    assert prev == heads


async def test_changed_views_reach_the_compacted_view_topic(
    infra: Endpoints, database_url: str, namespace: str
) -> None:
    history = _history(10, seed=9)
    await publish(infra.kafka_bootstrap, _records(namespace, history))
    settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
    async with running_projector(settings), running_view_relay(settings):
        await wait_caught_up(settings)
        expected = (await snapshot(database_url, namespace))["views"]
        latest: dict[str, Any] = {}
        consumer = AIOKafkaConsumer(
            f"{namespace}population.resident_view.v1",
            **kafka_options(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            for _ in range(60):
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    for r in recs:
                        latest[r.key.decode()] = json.loads(r.value)
                if set(latest) == set(expected) and all(
                    latest[c]["meta"]["event_count"] == expected[c]["meta"]["event_count"] for c in expected
                ):
                    break
        finally:
            await consumer.stop()
    assert set(latest) == set(expected)
    for cid, view in expected.items():
        assert latest[cid]["meta"]["event_count"] == view["meta"]["event_count"]
        # The topic carries views rendered for the day they were published; sections without time-relative
        # facts must equal the stored view exactly.
        for section in ("hukou", "education", "employment", "family"):
            assert latest[cid][section] == view[section], (cid, section)


async def _progress(db: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        return int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection.checkpoints"))
    finally:
        await conn.close()


async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    infra: Endpoints, databases: Databases, tmp_path: Any
) -> None:
    history = _history(300, seed=21)
    reference = await _reference(infra, databases, history)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    await publish(infra.kafka_bootstrap, _records(ns, history))
    rng = random.Random(4)
    kills = 0
    for _ in range(4):
        proc = spawn_projector(settings, free_port(), str(tmp_path / "projector.log"))
        try:
            start = await _progress(db)
            target = start + rng.randint(500, 3000)
            for _ in range(600):
                if await _progress(db) >= min(target, len(history)) or proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
        if await _progress(db) >= len(history):
            break
    assert kills >= 2, (tmp_path / "projector.log").read_text()[-3000:]
    proc = spawn_projector(settings, free_port(), str(tmp_path / "projector.log"))
    try:
        await wait_caught_up(settings, wait_s=180)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert await snapshot(db, ns) == reference


async def test_two_instances_with_a_rebalance_mid_stream_end_identical(
    infra: Endpoints, databases: Databases, tmp_path: Any
) -> None:
    history = _history(300, seed=22)
    reference = await _reference(infra, databases, history)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    await publish(infra.kafka_bootstrap, _records(ns, history))
    port_a = free_port()
    # Each instance is a supervisor of two workers (as on a 2-core machine): four consumers in the group.
    first = spawn_projector(settings, port_a, str(tmp_path / "a.log"), workers=2)
    second = None
    try:
        for _ in range(600):
            if await _progress(db) > 1000:
                break
            await asyncio.sleep(0.05)
        second = spawn_projector(settings, free_port(), str(tmp_path / "b.log"), workers=2)  # a rebalance
        for _ in range(600):
            if await _progress(db) > len(history) // 2:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port_a}/metrics", timeout=10)).text
        # The supervisor's /metrics reports both of its workers' counters.
        assert "renkou_projector_events_applied_total" in metrics
        first.terminate()  # and another rebalance: everything moves to the second instance
        first.wait(timeout=60)
        await wait_caught_up(settings, wait_s=180)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    assert await snapshot(db, ns) == reference


async def test_a_killed_supervisor_takes_its_workers_with_it(
    infra: Endpoints, databases: Databases, tmp_path: Any
) -> None:
    ns = await create_namespace(infra)
    settings = settings_for(infra.kafka_bootstrap, await databases.create(), ns)
    port = free_port()
    proc = spawn_projector(settings, port, str(tmp_path / "projector.log"), workers=2)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)).status_code < 300:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError((tmp_path / "projector.log").read_text()[-3000:])
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for _ in range(300):
            if not any(_alive(pid) for pid in workers):
                break
            await asyncio.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived their supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left
