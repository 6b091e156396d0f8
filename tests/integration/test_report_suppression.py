"""Disclosure control of the population report, case by case (pure: no Kafka, no PostgreSQL needed)."""

from __future__ import annotations

import pytest

from services.reports.population import CELLS, suppress


def counts(
    registered: int = 0,
    registered_urban: int = 0,
    resident: int = 0,
    resident_urban: int = 0,
    permit_holders: int = 0,
    permit_holders_urban: int = 0,
) -> dict[str, int]:
    return {
        "registered": registered,
        "registered_urban": registered_urban,
        "resident": resident,
        "resident_urban": resident_urban,
        "permit_holders": permit_holders,
        "permit_holders_urban": permit_holders_urban,
    }


def total_of(rows: list[dict[str, int]]) -> dict[str, int]:
    return {cell: sum(r[cell] for r in rows) for cell in CELLS}


@pytest.mark.parametrize(
    ("row", "hidden"),
    [
        (counts(500, 300, 520, 320, 40, 20), set()),
        (counts(9, 0, 10, 10, 0, 0), {"registered", "registered_urban"}),  # 9 people: hidden, urban with it
        (counts(10, 0, 0, 0, 0, 0), set()),  # 10 is shown, and zeros identify nobody
        (counts(500, 5, 0, 0, 0, 0), {"registered_urban"}),  # 5 urban people
        (counts(500, 495, 0, 0, 0, 0), {"registered_urban"}),  # 5 rural people, given away by 500 - 495
        (counts(500, 490, 0, 0, 0, 0), set()),  # 10 rural: safe
        (counts(0, 0, 0, 0, 3, 3), {"permit_holders", "permit_holders_urban"}),
    ],
)
def test_primary_suppression(row: dict[str, int], hidden: set[str]) -> None:
    # Two identical districts, so secondary suppression has nothing to add.
    shown, _ = suppress([row, row], total_of([row, row]))
    assert {c for c in CELLS if shown[0][c] is None} == hidden
    assert all(shown[0][c] == row[c] for c in CELLS if c not in hidden)


def test_a_lone_hidden_district_takes_the_next_smallest_with_it() -> None:
    rows = [counts(500, 400), counts(7, 7), counts(40, 30), counts(90, 80)]
    shown, total = suppress(rows, total_of(rows))
    assert [s["registered"] for s in shown] == [500, None, None, 90]  # 40 is the next smallest
    assert total["registered"] == 637
    hidden = [i for i, s in enumerate(shown) if s["registered"] is None]
    assert len(hidden) == 2


def test_a_lone_hidden_district_with_nothing_else_hides_the_total() -> None:
    rows = [counts(8, 8)]
    shown, total = suppress(rows, total_of(rows))
    assert shown[0]["registered"] is None and total["registered"] is None
    rows = [counts(8, 8), counts(0, 0)]
    shown, total = suppress(rows, total_of(rows))
    assert shown[1]["registered"] == 0 and total["registered"] is None


def test_a_small_total_is_hidden_too() -> None:
    rows = [counts(0, 0, 4, 4), counts(0, 0, 3, 3)]
    shown, total = suppress(rows, total_of(rows))
    assert total["resident"] is None and all(s["resident"] is None for s in shown)


def test_no_shown_count_is_between_one_and_nine() -> None:
    rows = [counts(r, r // 2, r + 3, r // 3, r % 11, r % 5) for r in range(0, 60, 7)]
    shown, total = suppress(rows, total_of(rows))
    for s in (*shown, total):
        assert all(v is None or v == 0 or v >= 10 for v in s.values())
    for cell in CELLS:
        hidden = [s for s in shown if s[cell] is None]
        assert len(hidden) != 1 or total[cell] is None
