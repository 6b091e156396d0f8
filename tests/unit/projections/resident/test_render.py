"""``render_view`` and its calendar rules: the contract's shape, facts computed for ``as_of``, flags."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from events import Event, Payload
from projections.resident import (
    VIEW_SECTIONS,
    ChildRef,
    FamilyView,
    HouseholdMember,
    Meta,
    fold,
    render_view,
)
from projections.resident.dates import add_months, business_date, completed_years, whole_months
from projections.resident.flags import FLAG_SECTIONS
from tests.support.projection import (
    CHILD,
    EMPLOYER_B,
    LEAP,
    MIGRANT,
    MOTHER,
    ev,
)


def view(citizen: str, *events: Event[Payload], as_of: date = date(2024, 6, 1)) -> dict[str, Any]:
    return render_view(citizen, fold(events), as_of=as_of)


def section(citizen: str, name: str, *events: Event[Payload], as_of: date = date(2024, 6, 1)) -> dict[str, Any]:
    result: dict[str, Any] = view(citizen, *events, as_of=as_of)[name]
    return result


def flag_codes(citizen: str, *events: Event[Payload]) -> list[str]:
    return [flag["code"] for flag in view(citizen, *events)["flags"]]


# ---------------------------------------------------------------------------------------------------------
# Calendar rules
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2020, 1, 15), date(2020, 2, 14), 0),
        (date(2020, 1, 15), date(2020, 2, 15), 1),
        # From the 31st, a month is complete on the last day of a shorter month (relativedelta's rule).
        (date(2020, 1, 31), date(2020, 2, 28), 0),
        (date(2020, 1, 31), date(2020, 2, 29), 1),
        (date(2021, 1, 31), date(2021, 2, 28), 1),
        (date(2020, 1, 31), date(2020, 3, 30), 1),
        (date(2020, 1, 31), date(2020, 3, 31), 2),
        (date(2019, 3, 1), date(2024, 6, 1), 63),
        (date(2020, 1, 1), date(2020, 1, 1), 0),
        (date(2020, 5, 1), date(2020, 1, 1), 0),  # a start in the future counts nothing
    ],
)
def test_whole_months(start: date, end: date, months: int) -> None:
    assert whole_months(start, end) == months


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(date(2020, 1, 31), 1) == date(2020, 2, 29)
    assert add_months(date(2020, 12, 15), 1) == date(2021, 1, 15)
    assert add_months(date(2020, 3, 31), -1) == date(2020, 2, 29)


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1990, 3, 8), date(2024, 3, 7), 33),  # the day before the birthday
        (date(1990, 3, 8), date(2024, 3, 8), 34),  # the birthday
        (date(2000, 2, 29), date(2023, 2, 28), 22),  # leap-day birthday in a common year…
        (date(2000, 2, 29), date(2023, 3, 1), 23),  # …counts from 1 March
        (date(2000, 2, 29), date(2024, 2, 29), 24),
        (date(2024, 5, 1), date(2024, 5, 1), 0),
        (date(2024, 5, 1), date(2024, 4, 30), None),  # before birth
    ],
)
def test_completed_years(birth: date, on: date, age: int | None) -> None:
    assert completed_years(birth, on) == age


def test_business_date_is_the_date_in_china() -> None:
    assert business_date(datetime(2024, 5, 1, 20, 0, tzinfo=UTC)) == date(2024, 5, 2)
    assert business_date(datetime(2024, 5, 2, 4, 0, tzinfo=timezone(timedelta(hours=8)))) == date(2024, 5, 2)


# ---------------------------------------------------------------------------------------------------------
# Shape
# ---------------------------------------------------------------------------------------------------------


def test_an_unknown_resident_renders_the_full_shape_with_empty_sections() -> None:
    result = render_view(LEAP, {}, as_of=date(2024, 6, 1))
    assert list(result) == ["citizen_id", *VIEW_SECTIONS]
    assert result["hukou"]["status"] == "none"
    assert result["residence"] == {
        "registration": None,
        "permit": None,
        "continuous_residence_months": 0,
        "registration_history": [],
        "permit_history": [],
    }
    assert result["education"] == {"current": None, "history": []}
    assert result["employment"]["status"] == "none"
    assert result["social_insurance"]["schemes"] == {}
    assert result["health"]["death"] is None and result["health"]["family_doctor"] is None
    assert result["family"] == {"mother": None, "father": None, "children": [], "household_members": []}
    assert result["flags"] == []
    assert result["meta"] == {"version": 0, "event_count": 0, "event_counts": {}, "last_event_at": {}}


def test_the_view_is_json_ready_and_carries_the_contract_fields() -> None:
    result = view(
        MIGRANT,
        ev("hukou.registered"),
        ev("residence.registered"),
        ev("residence_permit.issued"),
        ev("student.enrolled", citizen=MIGRANT),
        ev("employment.registered"),
        ev("insurance.enrolled"),
        ev("insurance.contributed"),
        ev("social_security_card.issued"),
        ev("health_record.opened"),
        ev("family_doctor.contracted"),
        ev("death.certified", citizen=MIGRANT),
    )
    json.dumps(result)  # no default= needed: dates and money are strings already
    assert set(result["identity"]) >= {"name", "sex", "birth_date", "ethnicity", "life_status", "deceased_on"}
    assert set(result["hukou"]) >= {
        "status",
        "household_id",
        "household_type",
        "relationship",
        "region_code",
        "address",
        "urban",
        "registered_on",
        "reason",
        "legacy_nature",
    }
    assert set(result["residence"]["registration"]) >= {"address", "region_code", "urban", "since"}
    assert set(result["residence"]["permit"]) >= {
        "permit_no",
        "status",
        "region_code",
        "issued_on",
        "valid_until",
        "basis",
    }
    assert set(result["education"]["current"]) >= {
        "school_code",
        "school_name",
        "region_code",
        "stage",
        "grade",
        "since",
        "migrant_child",
    }
    assert set(result["employment"]["employers"][0]) >= {
        "employer_code",
        "employer_name",
        "region_code",
        "started_on",
    }
    assert set(result["social_insurance"]["schemes"]["pension_employee"]) >= {
        "status",
        "region_code",
        "since",
        "months",
    }
    assert result["social_insurance"]["card_no"] == "A51010712"
    assert set(result["health"]) >= {"record_no", "family_doctor", "vaccinations", "death"}
    assert set(result["health"]["family_doctor"]) >= {"clinic_code", "team", "started_on", "ends_on"}
    assert set(result["health"]["death"]) >= {"died_on", "certificate_no"}
    assert result["residence"]["registration"]["since"] == "2019-03-01"


def test_a_state_under_the_wrong_department_is_refused() -> None:
    states = fold([ev("vaccination.recorded")])
    with pytest.raises(ValueError, match="public_security state must be"):
        render_view(CHILD, {"public_security": states["health"]}, as_of=date(2024, 6, 1))


# ---------------------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------------------


def test_identity_falls_back_to_the_citizen_id() -> None:
    identity = render_view(LEAP, {}, as_of=date(2023, 2, 28))["identity"]
    assert identity == {
        "name": None,
        "sex": "female",
        "birth_date": "2000-02-29",
        "ethnicity": None,
        "life_status": "alive",
        "deceased_on": None,
        "age": 22,
    }
    assert render_view(MIGRANT, {}, as_of=date(2024, 6, 1))["identity"]["sex"] == "male"


def test_identity_from_the_birth_registration_wins_over_the_citizen_id() -> None:
    # A registration on a number whose digits say otherwise (a late-assigned number): the register decides.
    born = ev("birth.registered", {"sex": "female", "birth_date": "2024-04-30"})
    identity = section(CHILD, "identity", born, as_of=date(2025, 4, 30))
    assert (identity["sex"], identity["birth_date"], identity["age"]) == ("female", "2024-04-30", 1)
    assert identity["name"] == "李沐阳"


def test_age_on_the_day_before_and_on_the_birthday() -> None:
    assert render_view(MOTHER, {}, as_of=date(2024, 3, 7))["identity"]["age"] == 33
    assert render_view(MOTHER, {}, as_of=date(2024, 3, 8))["identity"]["age"] == 34


def test_life_status_from_public_security_or_health() -> None:
    cancelled = ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 1, 10))
    certified = ev("death.certified", citizen=MIGRANT)
    assert section(MIGRANT, "identity", cancelled)["deceased_on"] == "2024-01-10"
    by_health = section(MIGRANT, "identity", certified, as_of=date(2025, 1, 1))
    assert (by_health["life_status"], by_health["deceased_on"]) == ("deceased", "2024-12-03")
    # The age stays the age reached at death.
    assert by_health["age"] == 29
    both = section(MIGRANT, "identity", cancelled, certified)
    assert both["deceased_on"] == "2024-01-10"  # public security's date first
    assert section(MIGRANT, "identity")["life_status"] == "alive"


# ---------------------------------------------------------------------------------------------------------
# Residence
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        (date(2019, 8, 31), "not_yet_valid"),
        (date(2019, 9, 1), "valid"),  # issued_on
        (date(2020, 8, 31), "valid"),  # valid_until, included
        (date(2020, 9, 1), "expired"),
    ],
)
def test_permit_status_at_the_boundaries(as_of: date, status: str) -> None:
    residence = section(MIGRANT, "residence", ev("residence_permit.issued"), as_of=as_of)
    assert residence["permit"]["status"] == status


def test_permit_renewal_extends_validity_and_revocation_wins() -> None:
    issued, renewed = ev("residence_permit.issued"), ev("residence_permit.renewed")
    as_of = date(2021, 8, 31)
    assert section(MIGRANT, "residence", issued, as_of=as_of)["permit"]["status"] == "expired"
    assert section(MIGRANT, "residence", issued, renewed, as_of=as_of)["permit"]["status"] == "valid"
    revoked = section(MIGRANT, "residence", issued, renewed, ev("residence_permit.revoked"), as_of=date(2020, 1, 1))
    assert revoked["permit"]["status"] == "revoked"


@pytest.mark.parametrize(
    ("since", "as_of", "months"),
    [
        ("2020-01-31", date(2020, 2, 28), 0),
        ("2020-01-31", date(2020, 2, 29), 1),
        ("2020-01-15", date(2021, 1, 14), 11),
        ("2020-01-15", date(2021, 1, 15), 12),
        ("2025-01-01", date(2024, 6, 1), 0),  # registered after as_of
    ],
)
def test_continuous_residence_months(since: str, as_of: date, months: int) -> None:
    residence = section(MIGRANT, "residence", ev("residence.registered", {"since": since}), as_of=as_of)
    assert residence["continuous_residence_months"] == months


def test_continuous_residence_is_zero_after_the_registration_ended() -> None:
    residence = section(MIGRANT, "residence", ev("residence.registered"), ev("residence.ended"))
    assert residence["continuous_residence_months"] == 0
    assert residence["registration"] is None


# ---------------------------------------------------------------------------------------------------------
# Employment, insurance, health
# ---------------------------------------------------------------------------------------------------------


def test_employment_status() -> None:
    employed = section(MIGRANT, "employment", ev("unemployment.registered"), ev("employment.registered"))
    assert employed["status"] == "employed"
    assert section(MIGRANT, "employment", ev("unemployment.registered"))["status"] == "unemployed"
    ended = section(MIGRANT, "employment", ev("unemployment.registered"), ev("unemployment.ended"))
    assert ended["status"] == "none"


def test_employers_are_sorted_by_start_then_code() -> None:
    employers = section(
        MIGRANT,
        "employment",
        ev("employment.registered", {"started_on": "2021-01-01"}),
        ev("employment.registered", {"employer_code": EMPLOYER_B, "started_on": "2020-01-01"}),
    )["employers"]
    assert [e["started_on"] for e in employers] == ["2020-01-01", "2021-01-01"]


def test_scheme_months_are_the_sum_over_regions_and_schemes_are_sorted() -> None:
    insurance = section(
        MIGRANT,
        "social_insurance",
        ev("insurance.enrolled", {"scheme": "unemployment", "employer_code": None}),
        ev("insurance.enrolled", {"region_code": "630102"}),
        ev("insurance.contributed", {"months": 12}),
        ev("insurance.transferred", {"months_carried": 4}),
        ev("insurance.contributed", {"months": 2, "period": "2020-03"}),
    )
    schemes = insurance["schemes"]
    assert isinstance(schemes, dict)
    assert list(schemes) == ["pension_employee", "unemployment"]
    pension = schemes["pension_employee"]
    assert (pension["months"], pension["months_by_region"]) == (14, {"510107": 6, "630102": 8})
    assert list(pension["months_by_region"]) == ["510107", "630102"]


def test_family_doctor_active_for_as_of() -> None:
    contracted = ev("family_doctor.contracted")  # 2024-01-01 .. 2024-12-31
    for as_of, active in [
        (date(2023, 12, 31), False),
        (date(2024, 1, 1), True),
        (date(2024, 12, 31), True),
        (date(2025, 1, 1), False),
    ]:
        health = section(MIGRANT, "health", contracted, as_of=as_of)
        assert health["family_doctor"]["active"] is active


def test_health_counts_vaccinations() -> None:
    health = section(CHILD, "health", ev("vaccination.recorded"), ev("vaccination.recorded", {"dose": 2}))
    assert health["vaccinations"] == 2


# ---------------------------------------------------------------------------------------------------------
# Family and meta
# ---------------------------------------------------------------------------------------------------------


def test_family_is_rendered_sorted_from_dataclasses_or_mappings() -> None:
    family = FamilyView(
        mother=MOTHER,
        father=None,
        children=(
            {
                "citizen_id": None,
                "name": "二宝",
                "birth_date": "2026-01-02",
                "certificate_no": "Q2",
                "sex": "female",
            },
            ChildRef(citizen_id=CHILD, name="李沐阳", birth_date=date(2024, 5, 1), certificate_no="Q1"),
        ),
        household_members=(
            HouseholdMember(citizen_id=CHILD, relationship="child"),
            {"citizen_id": MOTHER, "relationship": "spouse"},
            HouseholdMember(citizen_id=MIGRANT, relationship="head"),
        ),
    )
    rendered = render_view(LEAP, {}, as_of=date(2024, 6, 1), family=family)["family"]
    assert rendered["mother"] == MOTHER
    assert rendered["children"] == [
        {
            "citizen_id": CHILD,
            "name": "李沐阳",
            "sex": None,
            "birth_date": "2024-05-01",
            "certificate_no": "Q1",
        },
        {
            "citizen_id": None,
            "name": "二宝",
            "sex": "female",
            "birth_date": "2026-01-02",
            "certificate_no": "Q2",
        },
    ]
    assert [m["relationship"] for m in rendered["household_members"]] == ["head", "spouse", "child"]


def test_meta_from_the_store() -> None:
    meta = Meta(
        version=7,
        event_count=5,
        event_counts={"health": 2, "public_security": 3},
        last_event_at={
            "health": datetime(2024, 5, 3, 10, 30, tzinfo=UTC),
            "public_security": datetime(2024, 5, 20, 10, 30, tzinfo=timezone(timedelta(hours=8))),
        },
    )
    assert render_view(CHILD, {}, as_of=date(2024, 6, 1), meta=meta)["meta"] == {
        "version": 7,
        "event_count": 5,
        "event_counts": {"public_security": 3, "health": 2},
        "last_event_at": {"public_security": "2024-05-20T10:30:00+08:00", "health": "2024-05-03T10:30:00Z"},
    }


# ---------------------------------------------------------------------------------------------------------
# Flags, each on and off
# ---------------------------------------------------------------------------------------------------------


def test_death_not_deregistered() -> None:
    certified = ev("death.certified", citizen=MIGRANT)
    assert flag_codes(MIGRANT, ev("hukou.registered"), certified) == ["death_not_deregistered"]
    detail = view(MIGRANT, ev("hukou.registered"), certified)["flags"][0]["detail"]
    assert "2024-12-03" in detail and "D510104202400123" in detail and "510107" in detail
    assert flag_codes(MIGRANT, certified) == ["death_not_deregistered"]  # no hukou at all
    emigrated = ev("hukou.cancelled", {"reason": "emigration"}, citizen=MIGRANT)
    assert flag_codes(MIGRANT, emigrated, certified) == ["death_not_deregistered"]
    deregistered = ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 3))
    assert flag_codes(MIGRANT, ev("hukou.registered"), deregistered, certified) == []
    assert flag_codes(MIGRANT, ev("hukou.registered")) == []


def test_death_claims_disagree() -> None:
    certified = ev("death.certified", citizen=MIGRANT)  # died 2024-12-03
    later = ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 10))
    assert flag_codes(MIGRANT, later, certified) == ["death_claims_disagree"]
    same_day = ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 3))
    assert flag_codes(MIGRANT, same_day, certified) == []
    assert flag_codes(MIGRANT, later) == []


def test_employed_without_insurance() -> None:
    employed = ev("employment.registered")
    assert flag_codes(MIGRANT, employed) == ["employed_without_insurance"]
    assert flag_codes(MIGRANT, employed, ev("insurance.enrolled")) == []
    medical = ev("insurance.enrolled", {"scheme": "medical_employee"})
    assert flag_codes(MIGRANT, employed, medical) == []
    resident_only = ev("insurance.enrolled", {"scheme": "pension_resident", "employer_code": None})
    assert flag_codes(MIGRANT, employed, resident_only) == ["employed_without_insurance"]
    stopped = [ev("insurance.enrolled"), ev("insurance.stopped")]
    assert flag_codes(MIGRANT, employed, *stopped) == ["employed_without_insurance"]
    assert flag_codes(MIGRANT, ev("insurance.enrolled")) == []  # not employed


def test_enrolled_outside_residence() -> None:
    enrolled = ev("student.enrolled", citizen=MIGRANT)  # school in 510107 (Chengdu)
    assert flag_codes(MIGRANT, enrolled) == ["enrolled_outside_residence"]
    # Another district of the same city (5101..) is not outside.
    hukou_here = ev("hukou.registered", {"region_code": "510104"})
    assert flag_codes(MIGRANT, hukou_here, enrolled) == []
    hukou_elsewhere = ev("hukou.registered", {"region_code": "630102"})
    assert flag_codes(MIGRANT, hukou_elsewhere, enrolled) == ["enrolled_outside_residence"]
    residence_here = ev("residence.registered", {"region_code": "510112"})
    assert flag_codes(MIGRANT, hukou_elsewhere, residence_here, enrolled) == []
    # A hukou that moved out is no tie any more.
    moved = [ev("hukou.registered"), ev("hukou.moved_out", citizen=MIGRANT)]
    assert flag_codes(MIGRANT, *moved, enrolled) == ["enrolled_outside_residence"]
    assert flag_codes(MIGRANT, hukou_elsewhere) == []  # not at school


def test_flags_are_ordered_by_code() -> None:
    codes = flag_codes(
        MIGRANT,
        ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 10)),
        ev("death.certified", citizen=MIGRANT),
        ev("employment.registered"),
        ev("student.enrolled", citizen=MIGRANT),
    )
    assert (
        codes
        == sorted(codes)
        == [
            "death_claims_disagree",
            "employed_without_insurance",
            "enrolled_outside_residence",
        ]
    )


# ---------------------------------------------------------------------------------------------------------
# Flags reveal nothing ungranted (CONTRACT §11)
# ---------------------------------------------------------------------------------------------------------

ALL_FLAGS = (
    ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 10)),
    ev("death.certified", citizen=MIGRANT),
    ev("employment.registered"),
    ev("student.enrolled", citizen=MIGRANT),
)


def _shown(*sections: str) -> list[str]:
    rendered = render_view(MIGRANT, fold(ALL_FLAGS), as_of=date(2024, 6, 1), sections=("flags", *sections))
    return [f["code"] for f in rendered["flags"]]


def test_a_flag_is_shown_only_to_a_reader_of_every_section_it_speaks_of() -> None:
    every = [f["code"] for f in view(MIGRANT, *ALL_FLAGS)["flags"]]
    assert every == ["death_claims_disagree", "employed_without_insurance", "enrolled_outside_residence"]
    assert _shown() == []  # a flags-only grant: no death dates, employers or schools by the back door
    assert _shown("employment") == []
    assert _shown("employment", "social_insurance") == ["employed_without_insurance"]
    assert _shown("identity", "hukou", "health") == ["death_claims_disagree"]
    assert _shown("education", "hukou", "residence") == ["enrolled_outside_residence"]
    assert _shown(*VIEW_SECTIONS) == every


def test_every_flag_declares_its_sections() -> None:
    assert set(FLAG_SECTIONS) == {
        "death_claims_disagree",
        "death_not_deregistered",
        "employed_without_insurance",
        "enrolled_outside_residence",
    }
    assert all(sections and sections <= set(VIEW_SECTIONS) - {"flags"} for sections in FLAG_SECTIONS.values())
