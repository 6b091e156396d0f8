"""Citizen ID rules (CONTRACT §5, DOMAIN.md): every rule, its message, and the generator."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from events.citizen_id import (
    EARLIEST_BIRTH_DATE,
    CitizenId,
    CitizenIdError,
    RegionCode,
    birth_date_of,
    division_in_force,
    division_name,
    division_of,
    lookup_division,
    make_citizen_id,
    normalize_citizen_id,
    normalize_region_code,
    sex_of,
    upgrade_legacy,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
TODAY = date(2025, 6, 1)


def with_check(first17: str) -> str:
    """The DOMAIN.md formula, independent of the code under test."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def problems_of(raw: str, today: date | None = TODAY) -> list[str]:
    with pytest.raises(CitizenIdError) as info:
        normalize_citizen_id(raw, today=today)
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


# -- the worked example --------------------------------------------------------------------------------------


def test_worked_example() -> None:
    first17 = "11010519491231002"
    assert sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) == 167
    assert 167 % 11 == 2
    cid = "11010519491231002X"
    assert normalize_citizen_id(cid) == cid
    assert birth_date_of(cid) == date(1949, 12, 31)
    assert sex_of(cid) == "female"
    assert division_of(cid) == "110105"
    assert division_name("110105") == "北京市朝阳区"


def test_lower_case_x_is_normalised() -> None:
    assert normalize_citizen_id("11010519491231002x") == "11010519491231002X"
    assert TypeAdapter(CitizenId).validate_python("11010519491231002x") == "11010519491231002X"


def test_odd_sequence_is_male() -> None:
    assert sex_of(make_citizen_id("110105", date(1980, 1, 1), 1)) == "male"
    assert sex_of(make_citizen_id("110105", date(1980, 1, 1), 998)) == "female"


# -- each rule, failing alone, with its message --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1101051949123100", "length must be 18 characters, got 16"),
        ("", "length must be 18 characters, got 0"),
        ("11010519491231002X1", "length must be 18 characters, got 19"),
        (" 11010519491231002X", "length must be 18 characters, got 19"),
    ],
)
def test_length(raw: str, expected: str) -> None:
    assert expected in problems_of(raw)


def test_legacy_15_digit_number_names_its_18_digit_form() -> None:
    (problem,) = problems_of("110105491231002")
    assert problem.startswith("length is 15")
    assert "'11010519491231002X'" in problem
    assert upgrade_legacy("110105491231002") == "11010519491231002X"
    assert normalize_citizen_id(upgrade_legacy("110105491231002")) == "11010519491231002X"


def test_upgrade_legacy_rejects_other_shapes() -> None:
    with pytest.raises(CitizenIdError, match="legacy number has 15 digits"):
        upgrade_legacy("11010549123100")


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("11010519491231002A", "found 'A' at position 18"),
        ("1101051949123100X2", "found 'X' at position 17"),
        ("１１010519491231002X", "found '１' at position 1"),  # full-width digits are not ASCII digits
        ("11O10519491231002X", "found 'O' at position 3"),
    ],
)
def test_characters(raw: str, found: str) -> None:
    problems = problems_of(raw)
    assert any(p.startswith("characters") and found in p for p in problems), problems


def test_characters_of_wrong_length_are_reported_too() -> None:
    problems = problems_of("1101AB")
    assert problems[0] == "length must be 18 characters, got 6"
    assert problems[1].startswith("characters") and "'AB'" in problems[1]


def test_check_character_names_the_expected_one() -> None:
    assert problems_of("110105194912310021") == ["check character should be 'X', got '1'"]
    valid = make_citizen_id("510107", date(1990, 3, 8), 42)
    wrong = "0" if valid[-1] != "0" else "1"
    assert problems_of(valid[:-1] + wrong) == [f"check character should be {valid[-1]!r}, got {wrong!r}"]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("19490230", "birth date '19490230' is not a real date"),
        ("19491301", "birth date '19491301' is not a real date"),
        ("19490000", "birth date '19490000' is not a real date"),
        ("18691231", "birth date 1869-12-31 is before 1870-01-01"),
        ("20250602", "birth date 2025-06-02 is after today (2025-06-01)"),
    ],
)
def test_birth_date(stamp: str, expected: str) -> None:
    assert problems_of(with_check(f"110105{stamp}002")) == [expected]


def test_birth_date_bounds_are_inclusive() -> None:
    assert normalize_citizen_id(with_check("11010518700101002"), today=TODAY)
    assert normalize_citizen_id(with_check("11010520250601002"), today=TODAY)
    assert date(1870, 1, 1) == EARLIEST_BIRTH_DATE


def test_today_is_injectable() -> None:
    cid = with_check("11010520300101003")
    assert problems_of(cid, today=date(2029, 12, 31)) == ["birth date 2030-01-01 is after today (2029-12-31)"]
    assert normalize_citizen_id(cid, today=date(2030, 1, 1)) == cid


def test_the_default_bound_is_the_register_range_never_the_clock() -> None:
    # Validation must give the same verdict on any day (a rebuild re-judges old records): without an explicit
    # today, a birth date is bounded by the end of the register's range; an event bounds it by its recorded_at.
    assert normalize_citizen_id(with_check("11010521991231003")) == with_check("11010521991231003")
    assert problems_of(with_check("11010522000101003"), today=None) == [
        "birth date 2200-01-01 is after 2199-12-31 (the register's range)"
    ]


def test_unknown_division_code() -> None:
    assert problems_of(with_check("99999919800101001")) == ["division code '999999' is not a GB/T 2260 code"]
    # A province prefix that exists but a county that never did.
    assert problems_of(with_check("11019919800101001")) == ["division code '110199' is not a GB/T 2260 code"]


def test_division_created_after_the_birth_year_is_valid() -> None:
    # 110118 密云区 was created in 2015; people born in Miyun long before got their number later.
    assert lookup_division("110118") is not None
    assert lookup_division("110118").periods == ((2015, None),)  # type: ignore[union-attr]
    cid = make_citizen_id("110118", date(1950, 7, 1), 11)
    assert normalize_citizen_id(cid) == cid


def test_division_abolished_before_the_birth_year_is_invalid() -> None:
    # 110103 崇文区 was merged into 东城区 in 2010.
    division = lookup_division("110103")
    assert division is not None and division.abolished_in == 2010
    assert normalize_citizen_id(with_check("11010320101231001"))  # born in its last year: fine
    (problem,) = problems_of(with_check("11010320110101001"))
    assert problem == "division code '110103' (北京市崇文区) was abolished after 2010, before the birth year 2011"


def test_a_reused_code_counts_as_existing_until_its_last_period() -> None:
    # 120110: 东郊区 until 1991, then 东丽区 (still in use).
    division = lookup_division("120110")
    assert division is not None
    assert division.periods == ((None, 1991), (1992, None))
    assert division.abolished_in is None
    assert division.name == "天津市东丽区"


def test_all_failed_rules_are_collected() -> None:
    problems = problems_of("99999918691331001A")
    rules = [p.split(" ")[0] for p in problems]
    assert rules == ["characters", "check", "birth", "division"]
    assert problems[1] == "check character should be '9', got 'A'"


def test_rejects_non_strings() -> None:
    with pytest.raises(CitizenIdError, match="must be a string"):
        normalize_citizen_id(11010519491231002)  # type: ignore[arg-type]


def test_make_citizen_id_validates() -> None:
    with pytest.raises(CitizenIdError, match="sequence number"):
        make_citizen_id("110105", date(1980, 1, 1), 1000)
    with pytest.raises(CitizenIdError, match="division code '999999'"):
        make_citizen_id("999999", date(1980, 1, 1), 1)
    with pytest.raises(CitizenIdError, match="abolished"):
        make_citizen_id("110103", date(2015, 1, 1), 1)


def test_pydantic_type_reports_every_problem() -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(CitizenId).validate_python("99999918691331001A")
    (error,) = info.value.errors()
    assert error["type"] == "citizen_id"
    assert len(error["ctx"]["problems"]) == 4


# -- region codes --------------------------------------------------------------------------------------------


def test_region_code() -> None:
    adapter = TypeAdapter(RegionCode)
    assert adapter.validate_python("510107") == "510107"
    assert adapter.validate_python("110103") == "110103"  # abolished codes are still codes (history)
    for bad in ("999999", "11010", "1101051", "11O105", "１１0105"):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
    with pytest.raises(ValueError, match="not a GB/T 2260 code"):
        normalize_region_code("999999")
    with pytest.raises(ValueError, match="6 digits"):
        normalize_region_code("abc")


# -- properties ----------------------------------------------------------------------------------------------

# Codes in use today, including ones created long after the earliest birth dates generated.
LIVE_DIVISIONS = ["110105", "110118", "120110", "310101", "510107", "510104", "630102", "370983", "220402"]


@given(
    division=st.sampled_from(LIVE_DIVISIONS),
    birth=st.dates(min_value=EARLIEST_BIRTH_DATE, max_value=date(2024, 12, 31)),
    seq=st.integers(min_value=0, max_value=999),
)
def test_generated_ids_validate_and_round_trip(division: str, birth: date, seq: int) -> None:
    cid = make_citizen_id(division, birth, seq)
    assert len(cid) == 18
    assert normalize_citizen_id(cid) == cid
    assert normalize_citizen_id(cid.lower()) == cid
    assert birth_date_of(cid) == birth
    assert sex_of(cid) == ("male" if seq % 2 else "female")
    assert division_of(cid) == division
    assert cid == with_check(cid[:17])


@given(
    birth=st.dates(min_value=EARLIEST_BIRTH_DATE, max_value=date(2024, 12, 31)),
    seq=st.integers(min_value=0, max_value=999),
    position=st.integers(min_value=0, max_value=16),
    delta=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_error_is_caught(birth: date, seq: int, position: int, delta: int) -> None:
    cid = make_citizen_id("510107", birth, seq)
    digit = str((int(cid[position]) + delta) % 10)
    typo = cid[:position] + digit + cid[position + 1 :]
    with pytest.raises(CitizenIdError) as info:
        normalize_citizen_id(typo)
    assert any(p.startswith("check character") for p in info.value.problems)


@given(st.text(max_size=25))
def test_arbitrary_text_is_accepted_or_rejected_cleanly(raw: str) -> None:
    try:
        result = normalize_citizen_id(raw)
    except CitizenIdError as exc:
        assert exc.problems
        assert all(p.split(" ")[0] in {"length", "characters", "check", "birth", "division"} for p in exc.problems)
    else:
        assert len(result) == 18


@pytest.mark.parametrize(
    ("code", "year", "in_force"),
    [
        ("510122", 2014, "510122"),  # 双流县, still a county
        ("510122", 2024, "510116"),  # → 双流区 (same stem)
        ("510124", 2024, "510117"),  # 郫县 → 郫都区
        ("512081", 2024, "510185"),  # 简阳市 moved from 资阳 to 成都: found in the province
        ("320683", 2024, "320612"),  # 通州市 → 通州区
        ("320611", 2024, "320613"),  # 港闸区 merged into 崇川区: no name in common, the approval's table
        ("370922", 2024, "370983"),  # 肥城县 → 肥城市
        ("510107", 2024, "510107"),  # in force: itself
        ("999999", 2024, "999999"),  # unknown to GB/T 2260: left as it is
        ("140202", 2024, "140202"),  # 大同 城区 (abolished 2018): a generic stem is never 阳泉's 城区
        ("140411", 2024, "140411"),  # 长治 郊区: nor 阳泉's 郊区
        ("140227", 2024, "140227"),  # 大同县: never the city's own code 140200 (大同市)
    ],
)
def test_a_division_is_counted_under_the_one_in_force(code: str, year: int, in_force: str) -> None:
    assert division_in_force(code, year) == in_force
