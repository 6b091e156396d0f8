"""``anchor_check.choose_anchor``: which anchor a check holds the chains to, when Kafka's newest and the one the
database keeps disagree — and what the disagreement is called."""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.anchor.record import SignedAnchor
from services.anchor.topic import Published
from services.operations.anchor_check import AnchorReport, FindingList, choose_anchor
from tests.support.anchors import sample_anchor

TOPIC = "population.audit_anchor.v1"
KEY = Ed25519PrivateKey.generate()


def _series(length: int) -> list[SignedAnchor]:
    """Anchors #1…#length, each following the one before."""
    series: list[SignedAnchor] = []
    for seq in range(1, length + 1):
        previous = series[-1].digest() if series else "00" * 32
        series.append(replace(sample_anchor(), seq=seq, previous=previous).sign(KEY))
    return series


def _on_kafka(signed: SignedAnchor) -> tuple[SignedAnchor, Published]:
    return signed, Published(TOPIC, 0, signed.anchor.seq - 1, signed.to_bytes())


def _choose(on_kafka: SignedAnchor | None, stored: SignedAnchor | None) -> tuple[AnchorReport, list[str]]:
    report = AnchorReport(key_id="k")
    choose_anchor(None if on_kafka is None else _on_kafka(on_kafka), stored, TOPIC, report, FindingList(report, 10))
    return report, [f.problem for f in report.findings]


def test_the_same_anchor_in_both_places_is_checked_against_as_it_is_on_kafka() -> None:
    three = _series(3)[-1]
    report, problems = _choose(three, three)
    assert (report.anchor, report.source, problems) == (three, f"{TOPIC}[0]@2", [])


def test_a_database_behind_kafka_had_its_anchored_state_rolled_back() -> None:
    two, three = _series(3)[1:]
    report, problems = _choose(three, two)
    assert (report.anchor, problems) == (three, ["rolled_back"])
    assert "the database keeps anchor #2" in report.findings[0].detail
    report, problems = _choose(three, None)
    assert problems == ["rolled_back"] and "keeps no anchor" in report.findings[0].detail


def test_another_anchor_of_the_same_number_in_the_database_is_forged() -> None:
    three = _series(3)[-1]
    other = replace(three.anchor, reason="manual").sign(KEY)
    report, problems = _choose(three, other)
    assert (report.anchor, problems) == (three, ["forged"])


def test_the_next_anchor_built_but_not_yet_published_is_checked_against_from_the_database() -> None:
    two, three = _series(3)[1:]
    report, problems = _choose(two, three)
    assert (report.anchor, report.source, problems) == (three, "the database (not yet on Kafka)", [])
    assert "has not reached" in report.notes[0]
    first = _series(1)[0]
    report, problems = _choose(None, first)
    assert (report.anchor, problems) == (first, [])


def test_a_database_anchor_that_does_not_follow_kafkas_newest_is_a_gap() -> None:
    series = _series(4)
    report, problems = _choose(series[1], series[3])  # #4 kept, Kafka ends at #2: #3 is missing
    assert (report.anchor, problems) == (series[3], ["anchor_gap"])
    stray = replace(series[2].anchor, previous="cd" * 32).sign(KEY)  # #3, but not after #2
    report, problems = _choose(series[1], stray)
    assert problems == ["anchor_gap"]
    report, problems = _choose(None, series[1])  # #2 kept, nothing on Kafka
    assert problems == ["anchor_gap"] and "ends at #none" in report.findings[0].detail
