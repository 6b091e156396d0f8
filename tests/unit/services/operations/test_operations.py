"""The pure parts of the operator tasks: coordinates, names, work split, row diffs, chain-link checks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.operations.audit import BrokenLink, link_problems
from services.operations.base import BadInputError, OperationError, short_hex, shorten
from services.operations.dlq import format_coordinates, parse_coordinates
from services.operations.replay import ReplayReport, ReplayStats, split_work
from services.operations.schemas import check_name, old_schema_name, retarget
from services.operations.swap import rows_affected
from services.operations.verify import IGNORED_COLUMNS, row_differences


def test_coordinates_round_trip_with_dotted_topic_names() -> None:
    raw = "t1.population.health.v1:3:1024"
    assert parse_coordinates(raw) == ("t1.population.health.v1", 3, 1024)
    assert format_coordinates(*parse_coordinates(raw)) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nonsense", "is not TOPIC:PARTITION:OFFSET"),
        (":1:2", "is not TOPIC:PARTITION:OFFSET"),
        ("t:1", "is not TOPIC:PARTITION:OFFSET"),
        ("t:one:2", "whole numbers"),
        ("t:1:2.5", "whole numbers"),
        ("t:-1:2", "cannot be negative"),
    ],
)
def test_malformed_coordinates_are_bad_input(raw: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_coordinates(raw)


@pytest.mark.parametrize("name", ["projection_shadow", "shadow2", "_x", "projection_old_20260101000000"])
def test_schema_names_that_can_hold_a_shadow(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["projection", "public", "pg_catalog", "Shadow", "a-b", "x;drop", "", "a" * 64])
def test_schema_names_refused_for_a_shadow(name: str) -> None:
    with pytest.raises(BadInputError):
        check_name(name)


def test_the_live_schema_may_be_named_where_reading_it_is_meant() -> None:
    assert check_name("projection", allow_live=True) == "projection"


def test_old_schema_names_carry_the_swap_time() -> None:
    assert old_schema_name(datetime(2026, 11, 21, 23, 1, 2, tzinfo=UTC)) == "projection_old_20261121230102"


def test_catalogue_definitions_are_retargeted_to_the_shadow_keeping_their_names() -> None:
    index = "CREATE INDEX event_archive_occurred ON projection.event_archive USING btree (citizen_id, occurred_at)"
    assert retarget(index, "projection", "projection_shadow", "event_archive") == (
        "CREATE INDEX event_archive_occurred ON projection_shadow.event_archive USING btree (citizen_id, occurred_at)"
    )
    trigger = (
        "CREATE TRIGGER event_archive_append_only BEFORE DELETE OR UPDATE ON projection.event_archive "
        "FOR EACH ROW EXECUTE FUNCTION renkou_refuse_change()"
    )
    assert " ON s.event_archive FOR EACH ROW" in retarget(trigger, "projection", "s", "event_archive")
    with pytest.raises(OperationError):
        retarget(index, "projection", "s", "sections")


WorkItem = dict[tuple[str, int], tuple[int, int]]


@st.composite
def work_items(draw: st.DrawFn) -> WorkItem:
    topics = ["a", "b", "c", "d"]
    partitions = draw(st.integers(1, 12))
    work: WorkItem = {}
    for t in topics:
        for p in range(partitions):
            start = draw(st.integers(0, 50))
            work[(t, p)] = (start, start + draw(st.integers(0, 100)))
    return work


@given(work_items(), st.integers(1, 8))
def test_work_is_split_by_partition_number_without_loss_or_overlap(work: WorkItem, workers: int) -> None:
    groups = split_work(work, workers)
    assert len(groups) <= workers
    merged: WorkItem = {}
    for group in groups:
        assert group, "no empty groups"
        assert not set(group) & set(merged)
        merged |= group
    assert merged == {p: span for p, span in work.items() if span[1] > span[0]}
    # A partition number (a citizen's partition on every department topic) belongs to one worker.
    owners = [{n for _, n in group} for group in groups]
    for i, numbers in enumerate(owners):
        for other in owners[i + 1 :]:
            assert not numbers & other


def test_split_balances_the_offsets_to_read() -> None:
    work = {("a", n): (0, 100 if n < 2 else 10) for n in range(6)}
    groups = split_work(work, 2)
    loads = sorted(sum(e - s for s, e in g.values()) for g in groups)
    assert loads == [120, 120]


def test_row_differences_name_the_columns_and_skip_bookkeeping_times() -> None:
    live = {"citizen_id": "X", "department": "health", "event_count": 3, "state": {"a": 1}, "archived_at": "t1"}
    shadow = {"citizen_id": "X", "department": "health", "event_count": 2, "state": {"a": 1}, "archived_at": "t2"}
    diff = row_differences("sections", {"citizen_id": "X", "department": "health"}, live, shadow)
    assert diff.kind == "changed" and [c.column for c in diff.columns] == ["event_count"]
    assert diff.citizen_id == "X"
    assert "event_count: live 3 ≠ rebuilt 2" in diff.describe()
    assert "archived_at" in IGNORED_COLUMNS
    assert row_differences("t", {"k": 1}, None, shadow).kind == "only_shadow"
    assert "only in the live projection" in row_differences("t", {"k": 1}, live, None).describe()


def test_a_certificate_difference_names_its_citizen_from_the_row() -> None:
    diff = row_differences(
        "birth_certificates",
        {"certificate_no": "Q1"},
        {"certificate_no": "Q1", "child_citizen_id": "C", "child_name": "甲"},
        {"certificate_no": "Q1", "child_citizen_id": "C", "child_name": "乙"},
    )
    assert diff.citizen_id is None  # the key holds none; the differing column is not a citizen column
    assert diff.columns[0].column == "child_name"


def _link(prev: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev + body).digest()


def _row(
    seq: int, prev: bytes, body: bytes, *, prev_seq: int | None, prev_link: bytes | None, stored: bytes | None = None
) -> dict[str, Any]:
    return {
        "citizen_id": "X",
        "chain_seq": seq,
        "prev_hash": prev,
        "hash": stored if stored is not None else _link(prev, body),
        "computed": _link(prev, body),
        "prev_seq": prev_seq,
        "prev_link": prev_link,
    }


def test_chain_link_checks_name_position_expected_and_found() -> None:
    genesis = bytes(32)
    first = _link(genesis, b"one")
    assert link_problems("archive", _row(1, genesis, b"one", prev_seq=None, prev_link=None), "health") == []
    assert link_problems("archive", _row(2, first, b"two", prev_seq=1, prev_link=first), "health") == []
    forged = _row(2, first, b"tw0", prev_seq=1, prev_link=first, stored=_link(first, b"two"))
    [problem] = link_problems("archive", forged, "health")
    assert (problem.problem, problem.position) == ("hash", 2)
    assert problem.expected == short_hex(_link(first, b"tw0"), 16) and problem.found == short_hex(
        _link(first, b"two"), 16
    )
    gap = link_problems("access_log", _row(3, first, b"three", prev_seq=1, prev_link=b"\x01" * 32), None)
    assert {p.problem for p in gap} == {"sequence", "link"}
    assert next(p for p in gap if p.problem == "sequence").expected == "2"
    assert not_genesis(genesis)


def not_genesis(genesis: bytes) -> bool:
    problems = link_problems("archive", _row(1, b"\x02" * 32, b"x", prev_seq=None, prev_link=None), "d")
    return [p.problem for p in problems] == ["link"] and problems[0].expected == short_hex(genesis, 16)


def test_a_broken_link_reads_as_one_line() -> None:
    link = BrokenLink("archive", "X", "health", 7, "hash", "abcd…", "ef01…")
    assert link.describe() == (
        "archive X/health #7: hash is not sha256(prev_hash || body): expected abcd…, found ef01…"
    )
    assert BrokenLink("access_log", "X", None, 2, "head", "#3 aa", "#2 bb").describe().startswith("access_log X #2:")


def test_helpers() -> None:
    assert short_hex(bytes.fromhex("00ff" * 16), 6) == "00ff00…" and short_hex(None) == "-"
    assert shorten("a  b\nc", 10) == "a b c" and shorten("x" * 20, 5) == "xxxx…"
    assert rows_affected("INSERT 0 12") == 12 and rows_affected("UPDATE 3") == 3 and rows_affected("LOCK") == 0
    report = ReplayReport("s", True, {("t", 0): 5}, {("t", 0): 105, ("t", 1): 50}, ReplayStats(), 2.0, 1)
    assert report.events == 150 and report.rate == 75.0
    stats = ReplayStats(records=1, applied=1)
    stats.add(ReplayStats(records=2, duplicates=1))
    assert (stats.records, stats.applied, stats.duplicates) == (3, 1, 1)


def test_a_birth_certificate_merges_the_same_whichever_department_comes_first() -> None:
    """Health's certificate and public security's registration of one birth, disagreeing on the name."""
    import json

    from events import parse_event
    from events.examples import example_events
    from projections.resident.family import BirthCertificate, certificate_record, family_facts, merge_certificates

    registered = parse_event(example_events()["birth.registered"])
    certified_body = example_events()["birth.certified"]
    certified_body = {**certified_body, "payload": {**certified_body["payload"], "child_name": "李木阳"}}
    certified = parse_event(json.dumps(certified_body, ensure_ascii=False))

    def record(event: Any) -> Any:
        fact = next(f for f in family_facts(event) if isinstance(f, BirthCertificate))
        return certificate_record(fact, event.event_id, event.recorded_at)

    health_first = merge_certificates(record(certified), record(registered))
    registration_first = merge_certificates(record(registered), record(certified))
    assert health_first == registration_first
    assert health_first.child_name == "李沐阳"  # public security's registration decides
    assert health_first.certified_event_id == certified.event_id
    assert health_first.registered_event_id == registered.event_id
    assert health_first.child_citizen_id == registered.citizen_id
