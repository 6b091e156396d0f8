"""Statistical disclosure control (CONTRACT §11): no count from 1 to 9 can be read, nor derived from a total."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from services.disclosure import CELLS, MEASURES, MIN_COUNT, month_end, suppress


def _counts(draw: st.DrawFn) -> dict[str, int]:
    out: dict[str, int] = {}
    for measure in MEASURES:
        population = draw(st.one_of(st.integers(0, 12), st.integers(0, 400)))
        out[measure] = population
        out[f"{measure}_urban"] = draw(st.integers(0, population))
    return out


@st.composite
def tables(draw: st.DrawFn) -> list[dict[str, int]]:
    return [_counts(draw) for _ in range(draw(st.integers(0, 8)))]


def _total(districts: list[dict[str, int]]) -> dict[str, int]:
    return {cell: sum(d[cell] for d in districts) for cell in CELLS}


@given(tables())
def test_no_small_count_is_shown_or_derivable(districts: list[dict[str, int]]) -> None:
    total = _total(districts)
    shown, total_shown = suppress(districts, total)
    for row, raw in ((total_shown, total), *zip(shown, districts, strict=True)):
        for cell in CELLS:
            value = row[cell]
            assert value is None or value == raw[cell]
            assert value is None or not 0 < value < MIN_COUNT, (cell, value)
        for measure in MEASURES:
            if row[f"{measure}_urban"] is not None:  # the rural remainder is shown too, in effect
                assert row[measure] is not None
                assert not 0 < raw[measure] - raw[f"{measure}_urban"] < MIN_COUNT
    for cell in CELLS:
        if total_shown[cell] is None:
            continue
        hidden = [d[cell] for d, s in zip(districts, shown, strict=True) if s[cell] is None]
        # The total minus the shown districts: nothing, or a sum that points at no one.
        assert len(hidden) != 1
        assert not 0 < sum(hidden) < MIN_COUNT, (cell, hidden)


def test_two_small_districts_do_not_add_up_to_a_small_difference() -> None:
    zero = dict.fromkeys(CELLS, 0)
    districts = [{**zero, "registered": 3}, {**zero, "registered": 4}, {**zero, "registered": 50}]
    shown, total_shown = suppress(districts, _total(districts))
    # 3 and 4 are hidden; 57 - 50 would give 7 back, so 50 goes too (or the total).
    assert [s["registered"] for s in shown] == [None, None, None]
    assert total_shown["registered"] == 57


def test_zero_is_shown() -> None:
    zero = dict.fromkeys(CELLS, 0)
    _, total_shown = suppress([zero, zero], zero)
    assert all(value == 0 for value in total_shown.values())


def test_as_of_resolves_to_a_month_end() -> None:
    assert month_end(date(2025, 6, 15)) == date(2025, 5, 31)
    assert month_end(date(2025, 6, 30)) == date(2025, 6, 30)
    assert month_end(date(2024, 3, 1)) == date(2024, 2, 29)
    assert month_end(date(2025, 1, 10)) == date(2024, 12, 31)
