"""Table-driven eligibility cases: per policy and benefit, a small event history and the expected decision.

Each case states the expected ``eligible`` (and ``score`` / ``conclusive`` where it matters) and the expected
outcome of the conditions it is about — ``"condition"`` for a condition every route shares, ``"route.condition"``
for one of a route. Together the cases take every condition to its met and its failed side, and sit on the
boundaries: 5 vs 6 months, 23 vs 24 months, a score of 19 vs 20, ages 5/6/15/16.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import orjson
import pytest

from events.citizen_id import make_citizen_id
from projections.eligibility import ParentInput, Policy, RelativeInput, decide, load_policy
from tests.support.eligibility import (
    FATHER,
    FEICHENG_NATIVE,
    FEICHENG_OLD_ID,
    MIGRANT,
    MOTHER,
    History,
    child_born,
)

AS_OF = date(2024, 6, 30)
HOME = "130102"  # the migrant's hukou county (石家庄长安区), outside all five cities
ELSEWHERE = "440106"  # 广州天河区: a city none of the policies is about

Built = History | tuple[History, list[ParentInput]] | tuple[History, list[ParentInput], list[RelativeInput]]


@dataclass(frozen=True)
class City:
    policy: str
    district: str
    """An urban district of the city."""
    other_district: str
    """Another district of the same city."""


CITIES = (
    City("xining-2015", "630102", "630104"),
    City("nantong-2020", "320613", "320612"),
    City("chengdu-2017", "510107", "510104"),
    City("feicheng-2016", "370983", "370983"),
    City("liaoyuan-2015", "220402", "220403"),
)


@dataclass(frozen=True)
class Case:
    id: str
    policy: str
    benefit: str
    build: Callable[[], Built]
    eligible: bool
    reasons: dict[str, bool | None] = field(default_factory=dict)
    score: int | None = None
    conclusive: bool = True
    as_of: date = AS_OF


def migrant() -> History:
    """The migrant, hukou at home in Hebei since 2008."""
    return History(MIGRANT).hukou(HOME, date(2008, 9, 1))


def with_parents(child: History, mother: History | None = None, father: History | None = None) -> Built:
    link = (str(child.events[0].event_id),)
    parents = []
    if mother is not None:
        parents.append(ParentInput("mother", mother.citizen, link, mother.events))
    if father is not None:
        parents.append(ParentInput("father", father.citizen, link, father.events))
    return child, parents


# ---------------------------------------------------------------------------------------------------------
# Shared by every policy: the residence permit and compulsory education
# ---------------------------------------------------------------------------------------------------------


def residence_permit_cases(city: City) -> Iterator[Case]:
    p, r, r2 = city.policy, city.district, city.other_district

    def case(name: str, build: Callable[[], Built], eligible: bool, **reasons: bool | None) -> Case:
        return Case(f"{p}/residence_permit/{name}", p, "residence_permit", build, eligible, reasons)

    yield case(
        "six_months_exactly",
        lambda: migrant().residence(r, date(2023, 12, 31)),
        True,
        alive=True,
        hukou_outside_city=True,
        lives_in_city=True,
        continuous_residence_months=True,
        basis=True,
        **({"residence_in_town": True} if p == "liaoyuan-2015" else {}),
    )
    yield case(
        "five_months",
        lambda: migrant().residence(r, date(2024, 1, 1)),
        False,
        lives_in_city=True,
        continuous_residence_months=False,
        basis=True,
    )
    yield case(
        "hukou_already_in_city",
        lambda: History(MIGRANT).hukou(r, date(2010, 1, 1)).residence(r2, date(2020, 1, 1)),
        False,
        hukou_outside_city=False,
        continuous_residence_months=True,
    )
    yield case(
        "lives_elsewhere",
        lambda: migrant().residence(ELSEWHERE, date(2020, 1, 1)),
        False,
        hukou_outside_city=True,
        lives_in_city=False,
        continuous_residence_months=False,
        basis=False,
    )
    yield case("no_residence_registration", migrant, False, lives_in_city=False, continuous_residence_months=False)
    yield case(
        "residence_ended_before_as_of",
        lambda: migrant().residence(r, date(2020, 1, 1)).residence_ended(date(2024, 5, 1)),
        False,
        lives_in_city=False,
    )
    yield case(
        "move_within_city_keeps_continuity",
        lambda: migrant().residence(r, date(2023, 10, 1)).residence(r2, date(2024, 3, 1), basis="study"),
        True,
        continuous_residence_months=True,
        basis=True,
    )
    yield case(
        "move_into_city_restarts_the_count",
        lambda: migrant().residence(ELSEWHERE, date(2020, 1, 1)).residence(r, date(2024, 3, 1)),
        False,
        lives_in_city=True,
        continuous_residence_months=False,
    )
    yield case(
        "deceased",
        lambda: migrant().residence(r, date(2020, 1, 1)).died(date(2024, 2, 1)),
        False,
        alive=False,
        continuous_residence_months=True,
    )
    rural = case(
        "rural_residence",
        lambda: migrant().residence(r, date(2020, 1, 1), urban=False),
        p != "liaoyuan-2015",
        lives_in_city=True,
        continuous_residence_months=True,
    )
    if p == "liaoyuan-2015":  # (7) 「在城鎮居住半年以上」: a permit for living in a town, not in a village
        rural = replace(rural, reasons={**rural.reasons, "residence_in_town": False})
    yield rural


# Ages on 2024-06-30: born 2018-06-30 is 6 that day, 2018-07-01 still 5; born 2008-07-01 is 15, 2008-06-30 16.
AGE_5, AGE_6, AGE_15, AGE_16 = date(2018, 7, 1), date(2018, 6, 30), date(2008, 7, 1), date(2008, 6, 30)


def compulsory_education_cases(city: City) -> Iterator[Case]:
    p, r = city.policy, city.district

    def case(name: str, build: Callable[[], Built], eligible: bool, **reasons: bool | None) -> Case:
        return Case(f"{p}/compulsory_education/{name}", p, "compulsory_education", build, eligible, reasons)

    def local(birth: date) -> Callable[[], Built]:
        return lambda: History(child_born(birth)).born(r, birth)

    def migrant_child(birth: date = AGE_6) -> History:
        return History(child_born(birth)).born(HOME, birth, mother=MOTHER, father=FATHER)

    yield case("age_6_local_hukou", local(AGE_6), True, age=True, **{"local_hukou.hukou_in_city": True})
    yield case("age_5", local(AGE_5), False, age=False, **{"local_hukou.hukou_in_city": True})
    yield case("age_15_local_hukou", local(AGE_15), True, age=True)
    yield case("age_16", local(AGE_16), False, age=False)
    yield case(
        "mother_holds_a_valid_permit",
        lambda: with_parents(migrant_child(), mother=History(MOTHER).permit(r, date(2024, 1, 1))),
        True,
        age=True,
        **{"local_hukou.hukou_in_city": False, "mother_permit.mother_permit": True},
    )
    yield case(
        "father_holds_a_valid_permit",
        lambda: with_parents(
            migrant_child(AGE_15),
            mother=History(MOTHER).hukou(HOME, date(2000, 1, 1)),
            father=History(FATHER).permit(r, date(2024, 1, 1)),
        ),
        True,
        **{"mother_permit.mother_permit": False, "father_permit.father_permit": True},
    )
    yield case(
        "father_permit_expired",
        lambda: with_parents(migrant_child(), father=History(FATHER).permit(r, date(2023, 1, 1), date(2024, 6, 29))),
        False,
        **{"father_permit.father_permit": False},
    )
    yield case(
        "parent_permit_expired",
        lambda: with_parents(migrant_child(), mother=History(MOTHER).permit(r, date(2022, 1, 1), date(2023, 12, 31))),
        False,
        **{"mother_permit.mother_permit": False},
    )
    yield case(
        "parent_permit_of_another_city",
        lambda: with_parents(migrant_child(), mother=History(MOTHER).permit(ELSEWHERE, date(2024, 1, 1))),
        False,
        **{"mother_permit.mother_permit": False},
    )
    yield case(
        "parent_permit_revoked",
        lambda: with_parents(
            migrant_child(),
            mother=History(MOTHER).permit(r, date(2024, 1, 1), permit_no="R1").permit_revoked("R1", date(2024, 3, 1)),
        ),
        False,
        **{"mother_permit.mother_permit": False},
    )
    yield case(
        "parent_deceased",
        lambda: with_parents(
            migrant_child(), mother=History(MOTHER).permit(r, date(2024, 1, 1)).died(date(2024, 4, 1))
        ),
        False,
        **{"mother_permit.mother_permit": False},
    )
    yield case(
        "no_parent_on_record",
        lambda: migrant_child(),
        False,
        **{"local_hukou.hukou_in_city": False, "parent_permit.parent_permit": False},
    )
    yield case(
        "valid_permit_but_age_16",
        lambda: with_parents(migrant_child(AGE_16), mother=History(MOTHER).permit(r, date(2024, 1, 1))),
        False,
        age=False,
        **{"mother_permit.mother_permit": True},
    )


# ---------------------------------------------------------------------------------------------------------
# Nantong (4): a residence (rentals included) or insured employment
# ---------------------------------------------------------------------------------------------------------

NT, NT_RURAL = "320613", "320623"


def nt(name: str, build: Callable[[], Built], eligible: bool, conclusive: bool = True, **reasons: bool | None) -> Case:
    return Case(
        f"nantong-2020/settlement/{name}", "nantong-2020", "settlement", build, eligible, reasons, None, conclusive
    )


NANTONG = [
    nt(
        "rented_urban_residence",
        lambda: migrant().residence(NT, date(2024, 6, 1)),
        True,
        hukou_not_urban_in_city=True,
        **{"stable_residence.residence_in_city": True, "stable_residence.tenure": True},
    ),
    nt("owned_residence", lambda: migrant().residence(NT, date(2024, 6, 1), tenure="owned"), True),
    nt(
        "employer_dormitory",
        lambda: migrant().residence(NT, date(2020, 1, 1), tenure="employer"),
        False,
        False,
        **{"stable_residence.residence_in_city": True, "stable_residence.tenure": False},
    ),
    nt(
        "rural_residence",
        lambda: migrant().residence(NT_RURAL, date(2020, 1, 1), urban=False),
        False,
        False,
        **{"stable_residence.residence_in_city": False},
    ),
    nt(
        "residence_elsewhere",
        lambda: migrant().residence(ELSEWHERE, date(2020, 1, 1)),
        False,
        False,
        **{"stable_residence.residence_in_city": False},
    ),
    # (5) 「确保本地和外地农业转移人口适用相同的落户条件」: a Nantong villager settles in town like anyone else.
    nt(
        "rural_hukou_in_nantong_settles_like_anyone",
        lambda: History(MIGRANT).hukou(NT_RURAL, date(2000, 1, 1), urban=False).residence(NT, date(2020, 1, 1)),
        True,
        hukou_not_urban_in_city=True,
        **{"stable_residence.residence_in_city": True},
    ),
    nt(
        "hukou_already_urban_in_nantong",
        lambda: History(MIGRANT).hukou(NT, date(2000, 1, 1)).residence(NT, date(2020, 1, 1)),
        False,
        hukou_not_urban_in_city=False,
        **{"stable_residence.residence_in_city": True},
    ),
    nt(
        "employed_with_employee_pension",
        lambda: migrant().job(NT, date(2024, 1, 1)).insured("pension_employee", NT, date(2024, 1, 1)),
        True,
        **{"stable_employment.employed_in_city": True, "stable_employment.insured_in_city": True},
    ),
    nt(
        "employed_with_employee_medical",
        lambda: migrant().job(NT, date(2024, 1, 1)).insured("medical_employee", NT, date(2024, 1, 1)),
        True,
        **{"stable_employment.insured_in_city": True},
    ),
    nt(
        "employed_with_resident_medical_only",
        lambda: migrant().job(NT, date(2024, 1, 1)).insured("medical_resident", NT, date(2024, 1, 1)),
        False,
        False,
        **{"stable_employment.employed_in_city": True, "stable_employment.insured_in_city": False},
    ),
    nt(
        "employed_insurance_stopped",
        lambda: (
            migrant()
            .job(NT, date(2022, 1, 1))
            .insured("pension_employee", NT, date(2022, 1, 1))
            .insurance_stopped("pension_employee", date(2024, 6, 30))
        ),
        False,
        False,
        **{"stable_employment.insured_in_city": False},
    ),
    nt(
        "employed_insurance_stops_after_as_of",
        lambda: (
            migrant()
            .job(NT, date(2022, 1, 1))
            .insured("pension_employee", NT, date(2022, 1, 1))
            .insurance_stopped("pension_employee", date(2024, 7, 31))
        ),
        True,
        **{"stable_employment.insured_in_city": True},
    ),
    nt(
        "employed_insured_in_another_city",
        lambda: migrant().job(NT, date(2022, 1, 1)).insured("pension_employee", ELSEWHERE, date(2022, 1, 1)),
        False,
        False,
        **{"stable_employment.insured_in_city": False},
    ),
    nt(
        "employed_elsewhere_insured_here",
        lambda: migrant().job(ELSEWHERE, date(2022, 1, 1)).insured("pension_employee", NT, date(2022, 1, 1)),
        False,
        False,
        **{"stable_employment.employed_in_city": False, "stable_employment.insured_in_city": True},
    ),
    nt(
        "employment_ended",
        lambda: (
            migrant()
            .job(NT, date(2020, 1, 1))
            .insured("pension_employee", NT, date(2020, 1, 1))
            .job_ended(NT, date(2024, 3, 31))
        ),
        False,
        False,
        **{"stable_employment.employed_in_city": False},
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Feicheng 2(1) and 2(2)1: owned or rented residence, insured employment, business, returning graduates
# ---------------------------------------------------------------------------------------------------------

FC, JINAN = "370983", "370102"


def fc(name: str, build: Callable[[], Built], eligible: bool, conclusive: bool = True, **reasons: bool | None) -> Case:
    return Case(
        f"feicheng-2016/settlement/{name}", "feicheng-2016", "settlement", build, eligible, reasons, None, conclusive
    )


def feicheng_graduate(citizen: str, stage: str = "vocational") -> History:
    """A native who moved the hukou to the university in Jinan, graduated, and works in Feicheng."""
    return (
        History(citizen)
        .hukou(JINAN, date(2016, 9, 1), reason="other")
        .graduated(stage, date(2020, 6, 30))
        .job(FC, date(2020, 8, 1))
    )


FEICHENG = [
    fc(
        "owned_urban_residence",
        lambda: migrant().residence(FC, date(2024, 6, 1), tenure="owned"),
        True,
        **{"owned_residence.residence_in_city": True, "owned_residence.tenure": True},
    ),
    fc(
        "owned_rural_residence",
        lambda: migrant().residence(FC, date(2020, 1, 1), tenure="owned", urban=False),
        False,
        False,
        **{"owned_residence.residence_in_city": False},
    ),
    fc(
        "rented_24_months_insured",
        lambda: migrant().residence(FC, date(2022, 6, 30)).insured("medical_resident", FC, date(2022, 7, 1)),
        True,
        **{
            "owned_residence.tenure": False,
            "rented_residence.tenure": True,
            "rented_residence.months_at_address": True,
            "rented_residence.insured_in_city": True,
        },
    ),
    fc(
        "rented_23_months_insured",
        lambda: migrant().residence(FC, date(2022, 7, 1)).insured("medical_resident", FC, date(2022, 7, 1)),
        False,
        False,
        **{"rented_residence.months_at_address": False, "rented_residence.insured_in_city": True},
    ),
    fc(
        "rented_24_months_uninsured",
        lambda: migrant().residence(FC, date(2022, 6, 30)),
        False,
        False,
        **{"rented_residence.months_at_address": True, "rented_residence.insured_in_city": False},
    ),
    fc(
        "employed_and_insured",
        lambda: migrant().job(FC, date(2024, 5, 1)).insured("pension_resident", FC, date(2024, 5, 1)),
        True,
        **{"stable_employment.employed_in_city": True, "stable_employment.insured_in_city": True},
    ),
    fc(
        "employed_uninsured",
        lambda: migrant().job(FC, date(2024, 5, 1)),
        False,
        False,
        **{"stable_employment.employed_in_city": True, "stable_employment.insured_in_city": False},
    ),
    fc(
        "nothing_but_business_cannot_be_assessed",
        migrant,
        False,
        False,
        **{"business.not_assessable": None},
    ),
    fc(
        "returning_graduate_by_id",
        lambda: feicheng_graduate(FEICHENG_NATIVE),
        True,
        **{
            "returning_graduate.graduated": True,
            "returning_graduate.from_city": True,
            "returning_graduate.employed_in_city": True,
        },
    ),
    fc(
        "returning_graduate_with_a_pre_1992_id",
        lambda: feicheng_graduate(FEICHENG_OLD_ID, "higher"),
        True,
        **{"returning_graduate.from_city": True},
    ),
    fc(
        "returning_graduate_by_earlier_hukou",
        lambda: (
            History(MIGRANT)
            .hukou(FC, date(2000, 1, 1), reason="family_reunion")
            .moved_out(JINAN, date(2016, 9, 1))
            .hukou(JINAN, date(2016, 9, 1), reason="other")
            .graduated("higher", date(2020, 6, 30))
            .job(FC, date(2020, 8, 1))
        ),
        True,
        **{"returning_graduate.from_city": True},
    ),
    fc(
        "graduate_not_from_feicheng",
        lambda: feicheng_graduate(MIGRANT),
        False,
        False,
        **{"returning_graduate.graduated": True, "returning_graduate.from_city": False},
    ),
    fc(
        "native_with_senior_secondary_only",
        lambda: feicheng_graduate(FEICHENG_NATIVE, "senior_secondary"),
        False,
        False,
        **{"returning_graduate.graduated": False, "returning_graduate.from_city": True},
    ),
    fc(
        "native_graduate_working_elsewhere",
        lambda: (
            History(FEICHENG_NATIVE)
            .hukou(JINAN, date(2016, 9, 1), reason="other")
            .graduated("higher", date(2020, 6, 30))
            .job(JINAN, date(2020, 8, 1))
        ),
        False,
        False,
        # Working in Jinan: neither returning to work in Feicheng nor without an employer.
        **{"returning_graduate.employed_in_city": False, "graduate_without_employer.no_employer": False},
    ),
    fc(
        "hukou_already_urban_in_feicheng",
        lambda: History(MIGRANT).hukou(FC, date(2010, 1, 1)).residence(FC, date(2010, 1, 1), tenure="owned"),
        False,
        True,
        hukou_not_urban_in_city=False,
    ),
    # 2(2)1 「未落实就业单位的，可在原籍、父母、配偶户籍所在地或居住地社区居委会落户」: the clause's second half.
    fc(
        "native_graduate_without_an_employer",
        lambda: (
            History(FEICHENG_NATIVE)
            .hukou(JINAN, date(2016, 9, 1), reason="other")
            .graduated("higher", date(2024, 6, 28))
        ),
        True,
        **{
            "returning_graduate.employed_in_city": False,
            "graduate_without_employer.graduated": True,
            "graduate_without_employer.from_city": True,
            "graduate_without_employer.no_employer": True,
        },
    ),
    fc(
        "graduate_without_an_employer_not_from_feicheng",
        lambda: History(MIGRANT).hukou(JINAN, date(2016, 9, 1), reason="other").graduated("higher", date(2024, 6, 28)),
        False,
        False,
        **{"graduate_without_employer.from_city": False, "graduate_without_employer.no_employer": True},
    ),
    # 2(1) 「全面放开市区及镇街驻地落户限制……符合下列条件之一的人员」: no condition on where one comes from.
    fc(
        "rural_hukou_in_feicheng_settles_like_anyone",
        lambda: (
            History(MIGRANT).hukou(FC, date(2010, 1, 1), urban=False).residence(FC, date(2010, 1, 1), tenure="owned")
        ),
        True,
        True,
        hukou_not_urban_in_city=True,
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Liaoyuan (4) and (5)
# ---------------------------------------------------------------------------------------------------------

LY, LY_RURAL = "220402", "220422"


def ly(
    benefit: str, name: str, build: Callable[[], Built], eligible: bool, conclusive: bool = True, **r: bool | None
) -> Case:
    return Case(f"liaoyuan-2015/{benefit}/{name}", "liaoyuan-2015", benefit, build, eligible, r, None, conclusive)


LIAOYUAN = [
    ly(
        "settlement",
        "rented_urban_residence",
        lambda: migrant().residence(LY, date(2024, 6, 29)),
        True,
        **{"stable_residence.residence_in_city": True, "stable_residence.tenure": True},
    ),
    ly("settlement", "owned_residence", lambda: migrant().residence(LY, date(2019, 1, 1), tenure="owned"), True),
    ly(
        "settlement",
        "rural_residence",
        lambda: migrant().residence(LY_RURAL, date(2019, 1, 1), urban=False),
        False,
        False,
        **{"stable_residence.residence_in_city": False},
    ),
    ly(
        "settlement",
        "no_residence",
        migrant,
        False,
        False,
        **{"stable_residence.residence_in_city": False, "stable_residence.tenure": False},
    ),
    ly(
        "settlement",
        "hukou_already_in_liaoyuan",
        lambda: History(MIGRANT).hukou(LY_RURAL, date(2000, 1, 1)).residence(LY, date(2019, 1, 1)),
        False,
        hukou_outside_city=False,
    ),
    ly(
        "settlement_talent",
        "vocational_graduate_anywhere",
        lambda: migrant().residence(ELSEWHERE, date(2019, 1, 1)).graduated("vocational", date(2015, 6, 30)),
        True,
        **{"graduate.graduated": True},
    ),
    ly("settlement_talent", "higher_graduate", lambda: migrant().graduated("higher", date(2015, 6, 30)), True),
    ly(
        "settlement_talent",
        "senior_secondary_only",
        lambda: migrant().graduated("senior_secondary", date(2008, 6, 30)),
        False,
        False,
        **{
            "graduate.graduated": False,
            "skilled_talent.skill_certificate": False,
            "returned_overseas.not_assessable": None,
        },
    ),
    ly(
        "settlement_talent",
        "skill_certificate",
        lambda: migrant().training(date(2021, 11, 15)),
        True,
        **{"skilled_talent.skill_certificate": True},
    ),
    ly(
        "settlement_talent",
        "training_without_certificate",
        lambda: migrant().training(date(2021, 11, 15), certificate_no=None),
        False,
        False,
        **{"skilled_talent.skill_certificate": False},
    ),
    ly(
        "settlement_talent",
        "certificate_after_as_of",
        lambda: migrant().training(date(2024, 7, 1)),
        False,
        False,
        **{"skilled_talent.skill_certificate": False},
    ),
    ly(
        "settlement_talent",
        "hukou_already_in_liaoyuan",
        lambda: History(MIGRANT).hukou(LY, date(2000, 1, 1)).graduated("higher", date(2015, 6, 30)),
        False,
        True,
        hukou_outside_city=False,
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Chengdu 3(1)2 talent and 3(1)3 points
# ---------------------------------------------------------------------------------------------------------

CD, CD_SUBURBAN = "510107", "510121"  # 武侯区; 金堂县, a suburban new town


def cd(
    benefit: str, name: str, build: Callable[[], Built], eligible: bool, points: int | None = None, **r: bool | None
) -> Case:
    return Case(f"chengdu-2017/{benefit}/{name}", "chengdu-2017", benefit, build, eligible, r, points)


def points_history(
    *,
    residence_since: date,
    pension_months: int,
    stage: str | None = "vocational",
    tenure: str = "rented",
    district: str = CD,
    permit_until: date = date(2025, 6, 30),
    hukou: str = HOME,
) -> History:
    h = History(MIGRANT).hukou(hukou, date(2008, 9, 1))
    h.residence(district, residence_since, tenure=tenure)
    h.permit(district, date(2023, 7, 1), permit_until)
    if pension_months:
        h.insured("pension_employee", CD, date(2014, 1, 1)).paid("pension_employee", date(2014, 1, 1), pension_months)
    if stage:
        h.graduated(stage, date(2008, 6, 30))
    return h


CHENGDU = [
    cd("settlement_talent", "higher_graduate", lambda: migrant().graduated("higher", date(2012, 6, 30)), True),
    cd(
        "settlement_talent",
        "vocational_graduate",
        lambda: migrant().graduated("vocational", date(2012, 6, 30)),
        False,
        **{"graduate.graduated": False},
    ),
    cd(
        "settlement_talent",
        "hukou_already_in_chengdu",
        lambda: History(MIGRANT).hukou(CD_SUBURBAN, date(2000, 1, 1)).graduated("higher", date(2012, 6, 30)),
        False,
        hukou_outside_city=False,
        **{"graduate.graduated": True},
    ),
    # 120 months of pension -> 10; 60 months of residence -> 5; rented >= 12 months -> 2; vocational -> 3: 20.
    cd(
        "settlement_points",
        "score_20",
        lambda: points_history(residence_since=date(2019, 6, 30), pension_months=120),
        True,
        20,
        valid_permit_in_city=True,
        score=True,
    ),
    # One day later: 59 months of residence -> 4 points: 19.
    cd(
        "settlement_points",
        "score_19",
        lambda: points_history(residence_since=date(2019, 7, 1), pension_months=120),
        False,
        19,
        valid_permit_in_city=True,
        score=False,
    ),
    cd(
        "settlement_points",
        "caps_at_10_and_owned_home",
        lambda: points_history(residence_since=date(2010, 1, 1), pension_months=200, stage="higher", tenure="owned"),
        True,
        30,
    ),
    cd(
        "settlement_points",
        "suburban_new_town_bonus",
        lambda: points_history(residence_since=date(2019, 7, 1), pension_months=120, district=CD_SUBURBAN),
        True,
        22,
    ),
    cd(
        "settlement_points",
        "rental_of_11_months_scores_nothing",
        lambda: points_history(residence_since=date(2023, 7, 1), pension_months=120, stage="higher"),
        False,
        15,
    ),
    cd(
        "settlement_points",
        "rental_of_12_months_scores_2",
        lambda: points_history(residence_since=date(2023, 6, 30), pension_months=120, stage="higher"),
        False,
        18,
    ),
    cd(
        "settlement_points",
        "senior_secondary_scores_1",
        lambda: points_history(residence_since=date(2019, 6, 30), pension_months=120, stage="senior_secondary"),
        False,
        18,
    ),
    cd(
        "settlement_points",
        "permit_expired",
        lambda: points_history(
            residence_since=date(2010, 1, 1), pension_months=200, stage="higher", permit_until=date(2024, 6, 29)
        ),
        False,
        27,
        valid_permit_in_city=False,
        score=True,
    ),
    cd(
        "settlement_points",
        "no_permit",
        lambda: migrant().residence(CD, date(2010, 1, 1), tenure="owned"),
        False,
        15,
        valid_permit_in_city=False,
    ),
    cd(
        "settlement_points",
        "hukou_already_in_chengdu",
        lambda: points_history(residence_since=date(2010, 1, 1), pension_months=200, hukou=CD_SUBURBAN),
        False,
        25,
        hukou_outside_city=False,
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Xining annex (5): services at once, housing security and social assistance after years
# ---------------------------------------------------------------------------------------------------------

XN = "630102"


def settled_in(region: str, *, since: date, insurance_months: int, permit: bool = True) -> History:
    h = migrant().residence(region, since)
    if permit:
        h.permit(region, date(2024, 1, 1))
    h.insured("pension_employee", region, date(2018, 1, 1))
    if insurance_months:
        h.paid("pension_employee", date(2018, 1, 1), insurance_months)
    return h


def _services_cases(case: Callable[..., Case], benefit: str, region: str, elsewhere: str) -> list[Case]:
    """What a valid permit gives at once: the holder has it, a registered resident has it by hukou."""
    return [
        case(
            benefit,
            "valid_permit",
            lambda: migrant().permit(region, date(2024, 1, 1)),
            True,
            **{"permit_holder.valid_permit_in_city": True, "registered_resident.hukou_in_city": False},
        ),
        case(
            benefit,
            "permit_expired",
            lambda: migrant().permit(region, date(2023, 1, 1), date(2024, 6, 29)),
            False,
            **{"permit_holder.valid_permit_in_city": False},
        ),
        case(
            benefit,
            "permit_not_yet_issued",
            lambda: migrant().permit(region, date(2024, 7, 1)),
            False,
            **{"permit_holder.valid_permit_in_city": False},
        ),
        case(
            benefit,
            "permit_of_another_city",
            lambda: migrant().permit(elsewhere, date(2024, 1, 1)),
            False,
            **{"permit_holder.valid_permit_in_city": False},
        ),
        case(
            benefit,
            "registered_resident",
            lambda: History(MIGRANT).hukou(region, date(2000, 1, 1)),
            True,
            **{"registered_resident.hukou_in_city": True, "permit_holder.valid_permit_in_city": False},
        ),
    ]


def permit_rights_cases(
    policy: str,
    region: str,
    elsewhere: str,
    progressive: tuple[str, ...],
    at_once: tuple[str, ...] = ("basic_public_services",),
) -> list[Case]:
    """A permit's rights: each of ``at_once`` at once, each of ``progressive`` after 36 months of residence and of
    insurance (Xining annex (5), Chengdu 3(3)1)."""

    def case(benefit: str, name: str, build: Callable[[], Built], eligible: bool, **r: bool | None) -> Case:
        return Case(f"{policy}/{benefit}/{name}", policy, benefit, build, eligible, r)

    cases: list[Case] = []
    for services in at_once:
        cases += _services_cases(case, services, region, elsewhere)
    for benefit in progressive:
        cases += [
            case(
                benefit,
                "36_months_of_residence_and_insurance",
                lambda: settled_in(region, since=date(2021, 6, 30), insurance_months=36),
                True,
                **{
                    "permit_holder.valid_permit_in_city": True,
                    "permit_holder.continuous_residence_months": True,
                    "permit_holder.insurance_months": True,
                },
            ),
            case(
                benefit,
                "35_months_of_residence",
                lambda: settled_in(region, since=date(2021, 7, 1), insurance_months=36),
                False,
                **{"permit_holder.continuous_residence_months": False, "permit_holder.insurance_months": True},
            ),
            case(
                benefit,
                "35_months_of_insurance",
                lambda: settled_in(region, since=date(2021, 6, 30), insurance_months=35),
                False,
                **{"permit_holder.continuous_residence_months": True, "permit_holder.insurance_months": False},
            ),
            case(
                benefit,
                "no_permit",
                lambda: settled_in(region, since=date(2015, 1, 1), insurance_months=60, permit=False),
                False,
                **{"permit_holder.valid_permit_in_city": False, "permit_holder.insurance_months": True},
            ),
            case(
                benefit,
                "registered_resident",
                lambda: History(MIGRANT).hukou(region, date(2000, 1, 1)),
                True,
                **{"registered_resident.hukou_in_city": True},
            ),
            case(
                benefit,
                "deceased",
                lambda: settled_in(region, since=date(2015, 1, 1), insurance_months=60).died(date(2024, 1, 1)),
                False,
                alive=False,
            ),
        ]
    return cases


# Xining annex (5): 「逐步享有与当地户籍人口同等的就业扶持、住房保障、养老服务、社会福利、社会救助等权利」
# Xining 4(3): 「保障居住证持有人享有与当地户籍人口同等的接受义务教育、公共就业服务……等公共服务和……其他便利服务」
XINING = permit_rights_cases(
    "xining-2015",
    XN,
    ELSEWHERE,
    ("housing_security", "social_assistance", "employment_support", "elderly_services", "social_welfare"),
    ("basic_public_services", "permit_public_services", "permit_conveniences"),
)
# Chengdu 3(3)1: 「居住证持有人按有关规定享有相应的基本公共教育、劳动就业……等权利;以连续居住年限和参加社会保险等为条件,
# 逐步享有与户籍人口同等的职业教育、就业扶持、住房保障、养老服务、社会福利、社会救助等权利」
CHENGDU_PERMIT_RIGHTS = permit_rights_cases("chengdu-2017", "510107", ELSEWHERE, ("progressive_rights",))
# Liaoyuan (7): 「居住證持有人在就業、基本公共教育……等方面享有與當地戶籍人口同等的權利。
# 以連續居住和參加社會保險年限為條件,逐步在中等職業教育資助、就業扶持、住房保障、養老服務、社會福利、社會救助等方面
# 享有與當地戶籍人口同等的權利」
LIAOYUAN_PERMIT_RIGHTS = permit_rights_cases("liaoyuan-2015", "220402", ELSEWHERE, ("progressive_rights",))
# Nantong (7): 「保障他们在居住地依法享有基本公共服务和办事便利」
NANTONG_PERMIT_RIGHTS = permit_rights_cases("nantong-2020", NT, ELSEWHERE, ())
# Feicheng 3(1): 「保障居住证持有人享有与当地户籍人口同等的基本权益和公共服务」
FEICHENG_PERMIT_RIGHTS = permit_rights_cases("feicheng-2016", FC, ELSEWHERE, ())


# ---------------------------------------------------------------------------------------------------------
# Family follows: Nantong (4), Feicheng 2(1), Liaoyuan (4)
# ---------------------------------------------------------------------------------------------------------

PARTNER = make_citizen_id("130102", date(1989, 4, 12), 57)
NT_NATIVE = make_citizen_id("320623", date(2003, 3, 3), 21)  # born in 如东县, a rural county of Nantong
GRANDMOTHER = make_citizen_id("130102", date(1962, 1, 20), 64)
FAMILY_HOME = "130102-H1"  # the family's household in their home county
FLAT = "崇川区测试路1号"  # where the family lives in the city


def family(
    applicant: History,
    principal: History,
    relation: str,
    basis: str = "household",
) -> Built:
    """``applicant`` and the relative they follow, linked as ``relation`` (what the principal is to them)."""
    link = (str(principal.events[0].event_id),) if basis == "birth" else ()
    return applicant, [], [RelativeInput(relation, principal.citizen, basis, link, principal.events)]  # type: ignore[arg-type]


def renter_spouse(region: str, *, tenure: str = "rented", since: date = date(2022, 1, 1)) -> History:
    """The partner: hukou at home as head of the family household, renting (or owning) the flat in the city."""
    return (
        History(PARTNER)
        .hukou(HOME, date(2008, 9, 1), household=FAMILY_HOME)
        .residence(region, since, basis="residence", tenure=tenure, address=FLAT)
    )


def joining_spouse(region: str, *, address: str = FLAT) -> History:
    """The migrant: the partner's spouse in the home household, living in the city without a home of their own."""
    return (
        History(MIGRANT)
        .hukou(HOME, date(2012, 5, 1), household=FAMILY_HOME, relationship="spouse")
        .residence(region, date(2022, 3, 1), basis="residence", tenure="other", address=address)
    )


FAMILY_FOLLOWS = [
    # (4)「有合法稳定住所(含租赁)……的,本人及其共同居住生活的配偶、未婚子女、父母等,可以在当地申请登记常住户口」
    nt(
        "family/spouse_lives_with_a_renter",
        lambda: family(joining_spouse(NT), renter_spouse(NT), "spouse"),
        True,
        **{"stable_residence.tenure": False, "family_follows.spouse_qualifies": True},
    ),
    nt(
        "family/spouse_lives_apart",
        lambda: family(joining_spouse(NT, address="崇川区测试路9号"), renter_spouse(NT), "spouse"),
        False,
        **{"family_follows.spouse_qualifies": False},
    ),
    nt(
        # (4)'s family follows someone who qualifies by (4): not a returnee of (6) (whose own route has no family).
        "family/spouse_of_a_returnee_follows_no_one",
        lambda: family(
            joining_spouse(NT),
            History(NT_NATIVE)
            .hukou(HOME, date(2008, 9, 1), household=FAMILY_HOME)
            .residence(NT, date(2022, 1, 1), basis="residence", tenure="other", address=FLAT)
            .job(NT, date(2024, 3, 1)),
            "spouse",
        ),
        False,
        **{"family_follows.spouse_qualifies": False},
    ),
    nt(
        "family/spouse_of_someone_in_a_dormitory",
        lambda: family(joining_spouse(NT), renter_spouse(NT, tenure="employer"), "spouse"),
        False,
        **{"family_follows.spouse_qualifies": False},
    ),
    nt(
        "family/unmarried_child_lives_with_a_renting_parent",
        lambda: family(
            History(MIGRANT)
            .hukou(HOME, date(2008, 9, 1), household=FAMILY_HOME, relationship="child")
            .residence(NT, date(2022, 3, 1), basis="residence", tenure="other", address=FLAT),
            renter_spouse(NT),
            "parent",
        ),
        True,
        **{"family_follows.parent_qualifies": True},
    ),
    nt(
        "family/married_child_does_not_follow_a_parent",
        lambda: family(
            History(MIGRANT)
            .hukou(HOME, date(2016, 9, 1), household="130102-H7", relationship="spouse")
            .residence(NT, date(2022, 3, 1), basis="residence", tenure="other", address=FLAT),
            renter_spouse(NT),
            "parent",
            basis="birth",
        ),
        False,
        False,
        **{"family_follows.parent_qualifies": False},
    ),
    nt(
        "family/parent_lives_with_a_settled_child",
        lambda: family(
            History(GRANDMOTHER)
            .hukou(HOME, date(1990, 1, 1))
            .residence(NT, date(2023, 1, 1), basis="residence", tenure="other", address="测试地址2号"),
            History(MIGRANT).hukou(NT, date(2015, 3, 1)),
            "child",
            basis="birth",
        ),
        True,
        **{"family_follows.child_qualifies": True},
    ),
    nt(
        "family/parent_of_a_child_settled_in_a_village",
        lambda: family(
            History(GRANDMOTHER)
            .hukou(HOME, date(1990, 1, 1))
            .residence(NT_RURAL, date(2023, 1, 1), basis="residence", tenure="other", urban=False),
            History(MIGRANT).hukou(NT_RURAL, date(2015, 3, 1), urban=False, address="测试地址3号"),
            "child",
            basis="birth",
        ),
        False,
        False,
        **{"family_follows.child_qualifies": False},
    ),
    # 2(1)「符合下列条件之一的人员，本人及其共同居住生活的配偶、未婚子女、父母，可以在当地申请登记常住户口」
    fc(
        "family/spouse_lives_with_an_owner",
        lambda: family(joining_spouse(FC), renter_spouse(FC, tenure="owned"), "spouse"),
        True,
        **{"family_follows.spouse_qualifies": True},
    ),
    fc(
        "family/spouse_of_an_owner_living_apart",
        lambda: family(joining_spouse(FC, address="新城街道测试路9号"), renter_spouse(FC, tenure="owned"), "spouse"),
        False,
        False,  # the applicant's own business route (2(1)3) cannot be assessed
        **{"family_follows.spouse_qualifies": False},
    ),
    fc(
        # 2(1)1: a rental counts after 2 years with social insurance. A 1-year renter qualifies by no route that
        # can be assessed (the business route 2(1)3 cannot be), so neither they nor their spouse are refused outright.
        "family/spouse_of_a_renter_of_one_year",
        lambda: family(joining_spouse(FC), renter_spouse(FC, since=date(2023, 6, 1)), "spouse"),
        False,
        False,
        **{"family_follows.spouse_qualifies": None},
    ),
    # (4)「在市區或城鎮有合法穩定住所(含出租房屋)的人員,本人及其配偶、未婚子女、父母等。,相互居住的」
    ly(
        "settlement",
        "family/spouse_lives_with_a_renter",
        lambda: family(joining_spouse(LY), renter_spouse(LY), "spouse"),
        True,
        **{"family_follows.spouse_qualifies": True},
    ),
    ly(
        "settlement",
        "family/spouse_lives_apart",
        lambda: family(joining_spouse(LY, address="龙山区测试路9号"), renter_spouse(LY), "spouse"),
        False,
        **{"family_follows.spouse_qualifies": False},
    ),
]


# ---------------------------------------------------------------------------------------------------------
# What else the plans name: students and returnees (Nantong (5), (6)), veterans, laid-off workers, people without
# hukou and collective households (Feicheng 2(2), 4(3)), blue seals (Xining annex (2)), schooling and the
# minimum living guarantee (Liaoyuan (7), (11))
# ---------------------------------------------------------------------------------------------------------

SHANGHAI = "310104"


def nt_student(*, rural: bool = True) -> History:
    """A Nantong native who moved the hukou to a university in Shanghai and studies there."""
    return (
        History(NT_NATIVE)
        .hukou(NT_RURAL if rural else NT, date(2003, 3, 20), urban=not rural)
        .hukou(SHANGHAI, date(2021, 9, 1), reason="other")
        .enrolled(SHANGHAI, "higher", date(2021, 9, 1))
    )


def rural_graduate(region: str) -> History:
    """A graduate of rural origin from Hebei who works in ``region`` (no social insurance on record)."""
    return (
        History(MIGRANT)
        .hukou(HOME, date(2008, 9, 1), urban=False)
        .graduated("higher", date(2023, 6, 30))
        .job(region, date(2023, 8, 1))
    )


def nb(
    benefit: str, name: str, build: Callable[[], Built], eligible: bool, conclusive: bool = True, **r: bool | None
) -> Case:
    return Case(f"nantong-2020/{benefit}/{name}", "nantong-2020", benefit, build, eligible, r, None, conclusive)


def fb(
    benefit: str, name: str, build: Callable[[], Built], eligible: bool, conclusive: bool = True, **r: bool | None
) -> Case:
    return Case(f"feicheng-2016/{benefit}/{name}", "feicheng-2016", benefit, build, eligible, r, None, conclusive)


def veteran(citizen: str = MIGRANT) -> History:
    """Enlisted in 2018 (hukou cancelled for military service), discharged, not registered anywhere since."""
    return History(citizen).hukou(HOME, date(2008, 9, 1)).cancelled("military_service", date(2018, 9, 1))


def unit_worker(*, employed: bool = False, home: str | None = None, relationship: str = "other") -> History:
    """A worker whose hukou is in the unit's collective household in Feicheng."""
    h = History(MIGRANT).hukou(
        FC, date(2015, 3, 1), household="370983-UNIT", household_type="collective", relationship=relationship
    )
    if employed:
        h.job(FC, date(2015, 3, 1))
    if home is not None:
        h.residence(FC, date(2022, 1, 1), basis="residence", tenure=home)
    return h


def school_child(
    *,
    primary_in: str | None,
    junior_in: str | None,
    junior_on: date,
    senior_in: str | None = None,
    primary_until: date = date(2021, 6, 30),
) -> History:
    """A child born 2009 in Hebei: primary school from 2015, junior secondary from ``junior_on``."""
    h = History(child_born(date(2009, 8, 1))).born(HOME, date(2009, 8, 1), mother=MOTHER, father=FATHER)
    if primary_in is not None:
        h.enrolled(primary_in, "primary", date(2015, 9, 1)).graduated("primary", primary_until)
    if junior_in is not None:
        h.enrolled(junior_in, "junior_secondary", junior_on)
    if senior_in is not None:
        h.graduated("junior_secondary", date(2021, 6, 30)).enrolled(senior_in, "senior_secondary", date(2021, 9, 1))
    return h


def permit_mother(region: str) -> History:
    return History(MOTHER).hukou(HOME, date(2008, 9, 1)).permit(region, date(2024, 1, 1))


def ly_kid(birth: date) -> History:
    return History(child_born(birth)).born(HOME, birth, mother=MOTHER, father=FATHER)


def rural_in_liaoyuan(*, since: date = date(2021, 6, 30), urban_hukou: bool = False, town: bool = True) -> History:
    return (
        History(MIGRANT)
        .hukou(HOME, date(2008, 9, 1), urban=urban_hukou)
        .residence(LY if town else LY_RURAL, since, urban=town)
    )


BEYOND_SETTLEMENT = [
    # Nantong (5)「实施农村籍大学生来去自由的落户政策,学生在校期间或者毕业后,可以将户口迁回原籍或者迁入就(创)业地」
    nt(
        "rural_student_moves_the_hukou_back_home",
        nt_student,
        True,
        **{
            "rural_student_home.graduated": True,
            "rural_student_home.from_city": True,
            "rural_student_home.rural_origin": True,
        },
    ),
    nt(
        "urban_student_is_not_of_rural_origin",
        lambda: nt_student(rural=False),
        False,
        False,
        **{"rural_student_home.rural_origin": False, "rural_student_home.from_city": True},
    ),
    nt(
        "student_of_rural_origin_from_elsewhere",
        lambda: (
            History(MIGRANT).hukou(HOME, date(2008, 9, 1), urban=False).enrolled(SHANGHAI, "higher", date(2021, 9, 1))
        ),
        False,
        False,
        **{"rural_student_home.from_city": False, "rural_student_home.graduated": True},
    ),
    nt(
        "no_hukou_on_record_to_show_rural_origin",
        lambda: History(MIGRANT).graduated("higher", date(2023, 6, 30)).job(NT, date(2023, 8, 1)),
        False,
        False,
        **{"rural_graduate_at_work.rural_origin": None},
    ),
    nt(
        "rural_graduate_works_in_nantong",
        lambda: rural_graduate(NT),
        True,
        **{
            "rural_graduate_at_work.graduated": True,
            "rural_graduate_at_work.employed_in_city": True,
            "stable_employment.insured_in_city": False,
        },
    ),
    nt(
        "rural_graduate_works_elsewhere",
        lambda: rural_graduate(SHANGHAI),
        False,
        False,
        **{"rural_graduate_at_work.employed_in_city": False},
    ),
    # Nantong (6)「允许符合条件的返乡就业创业人员在原籍地或者就业创业地落户」
    nt(
        "returnee_works_in_nantong",
        lambda: History(NT_NATIVE).hukou(SHANGHAI, date(2021, 9, 1)).job(NT, date(2024, 3, 1)),
        True,
        **{"returnee.from_city": True, "returnee.employed_in_city": True},
    ),
    nt(
        "a_worker_not_from_nantong_is_no_returnee",
        lambda: migrant().job(NT, date(2024, 3, 1)),
        False,
        False,
        **{"returnee.from_city": False, "returnee.employed_in_city": True},
    ),
    # Nantong (5)「落实租赁房屋常住人口在社区公共户落户政策」
    nb(
        "community_collective_household",
        "renter",
        lambda: migrant().residence(NT, date(2024, 6, 1)),
        True,
        qualifies_for_settlement=True,
        home=True,
    ),
    nb(
        "community_collective_household",
        "owner_settles_at_home",
        lambda: migrant().residence(NT, date(2024, 6, 1), tenure="owned"),
        False,
        qualifies_for_settlement=True,
        home=False,
    ),
    nb(
        "community_collective_household",
        "dormitory_does_not_qualify",
        lambda: migrant().residence(NT, date(2024, 6, 1), tenure="employer"),
        False,
        qualifies_for_settlement=False,
        home=False,
    ),
    # Nantong (6)「积极推进建档立卡农村贫困人口在城镇落户」, (14)「及时将其落户在各级社会福利机构的集体户口上」
    nb("poverty_registered_settlement", "not_assessable", migrant, False, False, not_assessable=None),
    nb("poverty_registered_settlement", "deceased", lambda: migrant().died(date(2024, 1, 2)), False, alive=False),
    nb("homeless_placement", "not_assessable", migrant, False, False, not_assessable=None),
    nb("homeless_placement", "deceased", lambda: migrant().died(date(2024, 1, 2)), False, alive=False),
    nb(
        "community_collective_household",
        "hukou_already_urban_in_nantong",
        lambda: History(MIGRANT).hukou(NT, date(2000, 1, 1)).residence(NT, date(2024, 6, 1)),
        False,
        hukou_not_urban_in_city=False,
    ),
    # Feicheng 2(2)1「正式安置单位的复退、转业军人，可将户口落入工作单位所在地;未落实就业单位的，可在原籍、父母、配偶
    # 户籍所在地或居住地社区居委会落户」
    fc(
        "veteran_placed_with_an_employer",
        lambda: veteran().job(FC, date(2023, 3, 1)),
        True,
        **{"veteran_placed.discharged_serviceman": True, "veteran_placed.employed_in_city": True},
    ),
    fc(
        "a_worker_who_never_served",
        lambda: migrant().job(FC, date(2023, 3, 1)),
        False,
        False,
        **{"veteran_placed.discharged_serviceman": False},
    ),
    fc(
        "veteran_from_feicheng_without_an_employer",
        lambda: veteran(FEICHENG_NATIVE),
        True,
        **{"veteran_without_employer.no_employer": True, "veteran_without_employer.home_in_city": True},
    ),
    fc(
        "veteran_without_employer_living_in_feicheng",
        lambda: veteran().residence(FC, date(2024, 1, 1), basis="residence", tenure="other"),
        True,
        **{"veteran_without_employer.home_in_city": True},
    ),
    fc(
        "veteran_without_employer_and_no_home_in_feicheng",
        veteran,
        False,
        False,
        **{"veteran_without_employer.home_in_city": False},
    ),
    fc(
        "veteran_working_in_jinan",
        lambda: veteran(FEICHENG_NATIVE).job(JINAN, date(2023, 3, 1)),
        False,
        False,
        **{"veteran_placed.employed_in_city": False, "veteran_without_employer.no_employer": False},
    ),
    # Feicheng 2(2)2「在单位下岗、辞退、辞职……的职工或空挂人员户口，户口落入配偶所在单位或固定住所所在社区居委会；
    # 无合法固定住所的，户口仍由原户口单位管理」
    fb(
        "laid_off_transfer",
        "left_the_unit_with_a_rented_home",
        lambda: unit_worker(home="rented"),
        True,
        hukou_in_collective_household=True,
        left_the_unit=True,
        **{"fixed_residence.tenure": True},
    ),
    fb(
        "laid_off_transfer",
        "still_with_the_unit",
        lambda: unit_worker(employed=True, home="rented"),
        False,
        left_the_unit=False,
    ),
    fb(
        "laid_off_transfer",
        "a_family_household",
        lambda: History(MIGRANT).hukou(FC, date(2015, 3, 1)).residence(FC, date(2022, 1, 1), tenure="owned"),
        False,
        hukou_in_collective_household=False,
    ),
    fb(
        "laid_off_transfer",
        "no_fixed_home_stays_with_the_unit",
        unit_worker,
        False,
        False,  # a spouse the register does not link may work in Feicheng
        left_the_unit=True,
        **{"fixed_residence.residence_in_city": False, "spouse_unit.spouse_employed": None},
    ),
    fb(
        "laid_off_transfer",
        "spouse_without_work_in_feicheng",
        lambda: family(
            unit_worker(relationship="spouse"),
            History(PARTNER).hukou(
                FC, date(2015, 3, 1), household="370983-UNIT", household_type="collective", relationship="head"
            ),
            "spouse",
        ),
        False,
        **{"spouse_unit.spouse_employed": False},
    ),
    fb(
        "laid_off_transfer",
        "spouse_works_in_feicheng",
        lambda: family(
            unit_worker(relationship="spouse"),
            History(PARTNER)
            .hukou(FC, date(2015, 3, 1), household="370983-UNIT", household_type="collective", relationship="head")
            .job(FC, date(2015, 3, 1)),
            "spouse",
        ),
        True,
        **{"spouse_unit.spouse_employed": True},
    ),
    # Feicheng 2(2)3「对无户口人员按照上级相关部门的具体规定予以解决」
    fb("no_hukou_registration", "has_a_hukou", migrant, False, no_hukou=False),
    fb("no_hukou_registration", "deceased", lambda: migrant().died(date(2024, 1, 2)), False, alive=False),
    fb(
        "no_hukou_registration",
        "no_hukou_on_record",
        lambda: History(MIGRANT).residence(FC, date(2024, 1, 1)),
        False,
        False,
        no_hukou=None,
    ),
    # Feicheng 4(3)「方便符合条件又没有自主产权住房的人员落户」
    fb(
        "collective_household",
        "insured_worker_in_a_dormitory",
        lambda: (
            migrant()
            .job(FC, date(2023, 1, 1))
            .insured("pension_employee", FC, date(2023, 1, 1))
            .residence(FC, date(2023, 1, 1), tenure="employer")
        ),
        True,
        qualifies_for_settlement=True,
        home=True,
    ),
    fb(
        "collective_household",
        "insured_worker_who_owns_the_home",
        lambda: (
            migrant()
            .job(FC, date(2023, 1, 1))
            .insured("pension_employee", FC, date(2023, 1, 1))
            .residence(FC, date(2023, 1, 1), tenure="owned")
        ),
        False,
        qualifies_for_settlement=True,
        home=False,
    ),
    fb(
        "collective_household",
        "hukou_already_urban_in_feicheng",
        lambda: History(MIGRANT).hukou(FC, date(2000, 1, 1)).residence(FC, date(2023, 1, 1), tenure="employer"),
        False,
        hukou_not_urban_in_city=False,
    ),
    fb(
        "collective_household",
        "qualifying_by_no_route_that_can_be_assessed",
        lambda: migrant().residence(FC, date(2023, 1, 1), tenure="employer"),
        False,
        False,
        qualifies_for_settlement=None,
        home=True,
    ),
    # Xining annex (2)「对已经办理蓝印户口的人员,符合落户条件的,依据自愿原则可在当地申请登记常住户口,所持蓝印户口注销;
    # 不符合落户条件的,应当换领居住证」
    Case(
        "xining-2015/blue_seal_conversion/blue_seal_hukou",
        "xining-2015",
        "blue_seal_conversion",
        lambda: History(MIGRANT).hukou(XN, date(2010, 1, 1), legacy_nature="blue_seal"),
        True,
        {"blue_seal_hukou": True},
    ),
    Case(
        "xining-2015/blue_seal_conversion/ordinary_hukou",
        "xining-2015",
        "blue_seal_conversion",
        lambda: History(MIGRANT).hukou(XN, date(2010, 1, 1), legacy_nature="non_agricultural"),
        False,
        {"blue_seal_hukou": False},
    ),
    Case(
        "xining-2015/blue_seal_conversion/blue_seal_of_another_city",
        "xining-2015",
        "blue_seal_conversion",
        lambda: History(MIGRANT).hukou(ELSEWHERE, date(2010, 1, 1), legacy_nature="blue_seal"),
        False,
        {"blue_seal_hukou": False},
    ),
    # Liaoyuan (11)1「流動人口子女接受普惠性學前教育,參加初中考試,報考普通高中,享受當地戶籍人口子女同等待遇」
    ly(
        "preschool",
        "age_3_mother_lives_in_liaoyuan",
        lambda: with_parents(ly_kid(date(2021, 6, 30)), mother=History(MOTHER).residence(LY, date(2023, 1, 1))),
        True,
        age=True,
        **{"mother_permit.mother_permit": True},
    ),
    ly(
        "preschool",
        "age_2",
        lambda: with_parents(ly_kid(date(2021, 7, 1)), mother=History(MOTHER).residence(LY, date(2023, 1, 1))),
        False,
        age=False,
    ),
    ly(
        "preschool",
        "age_6_is_at_school",
        lambda: with_parents(ly_kid(AGE_6), mother=History(MOTHER).residence(LY, date(2023, 1, 1))),
        False,
        age=False,
    ),
    ly(
        "preschool",
        "mother_lives_elsewhere",
        lambda: with_parents(ly_kid(AGE_5), mother=History(MOTHER).residence(ELSEWHERE, date(2023, 1, 1))),
        False,
        age=True,
        **{"mother_permit.mother_permit": False},
    ),
    ly(
        "preschool",
        "local_hukou",
        lambda: History(child_born(AGE_5)).born(LY, AGE_5),
        True,
        **{"local_hukou.hukou_in_city": True},
    ),
    ly(
        "senior_high_school",
        "at_junior_school_in_liaoyuan",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2023, 9, 1)),
            mother=History(MOTHER).residence(LY, date(2023, 1, 1)),
        ),
        True,
        at_school_in_city=True,
        **{"mother_permit.mother_permit": True, "local_hukou.hukou_in_city": False},
    ),
    ly(
        "senior_high_school",
        "local_child",
        lambda: (
            History(child_born(date(2009, 8, 1)))
            .born(LY, date(2009, 8, 1))
            .enrolled(LY, "junior_secondary", date(2023, 9, 1))
        ),
        True,
        **{"local_hukou.hukou_in_city": True},
    ),
    ly(
        "senior_high_school",
        "mother_lives_elsewhere",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2023, 9, 1)),
            mother=History(MOTHER).residence(ELSEWHERE, date(2023, 1, 1)),
        ),
        False,
        **{"mother_permit.mother_permit": False},
    ),
    ly(
        "senior_high_school",
        "at_junior_school_elsewhere",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=ELSEWHERE, junior_on=date(2023, 9, 1)),
            mother=History(MOTHER).residence(LY, date(2023, 1, 1)),
        ),
        False,
        at_school_in_city=False,
    ),
    # Liaoyuan (7)「同時結合其子女在當地連續就學年限,逐步享受其子女在當地參加中考、高考的資格」
    ly(
        "zhongkao",
        "three_school_years_at_junior_school",  # September 2021 to the June 2024 examination: 33 months
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2021, 9, 1)), mother=permit_mother(LY)
        ),
        True,
        at_school_in_city=True,
        school_months_in_city=True,
        **{"mother_permit.mother_permit": True},
    ),
    ly(
        "zhongkao",
        "32_months_at_junior_school",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2021, 10, 1)), mother=permit_mother(LY)
        ),
        False,
        school_months_in_city=False,
    ),
    ly(
        "zhongkao",
        "primary_school_in_liaoyuan_counts_across_the_summer",
        lambda: with_parents(
            school_child(primary_in=LY, junior_in=LY, junior_on=date(2022, 9, 1), primary_until=date(2022, 6, 30)),
            mother=permit_mother(LY),
        ),
        True,
        school_months_in_city=True,
    ),
    ly(
        "zhongkao",
        "primary_school_elsewhere_does_not",
        lambda: with_parents(
            school_child(
                primary_in=ELSEWHERE, junior_in=LY, junior_on=date(2022, 9, 1), primary_until=date(2022, 6, 30)
            ),
            mother=permit_mother(LY),
        ),
        False,
        school_months_in_city=False,
    ),
    ly(
        "zhongkao",
        "a_transfer_within_liaoyuan_keeps_the_run",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2021, 6, 1)).transferred(
                "220403", date(2023, 2, 20)
            ),
            mother=permit_mother(LY),
        ),
        True,
        school_months_in_city=True,
    ),
    ly(
        "zhongkao",
        "local_child_at_senior_school",
        lambda: (
            History(child_born(date(2007, 8, 1)))
            .born(LY, date(2007, 8, 1))
            .enrolled(LY, "senior_secondary", date(2022, 9, 1))
        ),
        False,
        at_school_in_city=False,
        **{"local_hukou.hukou_in_city": True},
    ),
    ly(
        "zhongkao",
        "a_withdrawal_breaks_the_run",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=LY, junior_on=date(2021, 9, 1))
            .withdrawn(date(2022, 1, 10))
            .enrolled(LY, "junior_secondary", date(2022, 2, 1)),
            mother=permit_mother(LY),
        ),
        False,
        school_months_in_city=False,
    ),
    ly(
        "zhongkao",
        "mother_without_a_permit",
        lambda: with_parents(
            school_child(primary_in=LY, junior_in=LY, junior_on=date(2021, 9, 1)),
            mother=History(MOTHER).residence(LY, date(2015, 1, 1)),
        ),
        False,
        **{"mother_permit.mother_permit": False},
    ),
    ly(
        "gaokao",
        "three_school_years_at_senior_school",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=None, junior_on=date(2018, 9, 1), senior_in=LY),
            mother=permit_mother(LY),
        ),
        True,
        at_school_in_city=True,
        school_months_in_city=True,
    ),
    ly(
        "gaokao",
        "local_child_22_months_at_senior_school",
        lambda: (
            History(child_born(date(2007, 8, 1)))
            .born(LY, date(2007, 8, 1))
            .enrolled(ELSEWHERE, "junior_secondary", date(2019, 9, 1))
            .graduated("junior_secondary", date(2022, 6, 30))
            .enrolled(LY, "senior_secondary", date(2022, 9, 1))
        ),
        False,
        school_months_in_city=False,
        **{"local_hukou.hukou_in_city": True},
    ),
    ly(
        "gaokao",
        "mother_without_a_permit",
        lambda: with_parents(
            school_child(primary_in=None, junior_in=None, junior_on=date(2018, 9, 1), senior_in=LY),
            mother=History(MOTHER).residence(LY, date(2015, 1, 1)),
        ),
        False,
        **{"mother_permit.mother_permit": False},
    ),
    ly(
        "gaokao",
        "still_at_junior_school",
        lambda: with_parents(
            school_child(primary_in=LY, junior_in=LY, junior_on=date(2021, 9, 1)), mother=permit_mother(LY)
        ),
        False,
        at_school_in_city=False,
    ),
    # Liaoyuan (11)5「在城鎮連續居住壹定年限以上……的被征地農民和農民工家庭,可以申請享受城鎮最低生活保障待遇。在城鎮連續
    # 居住並參加社會保險超過壹定期限……的其他農村居民,逐步享受城鎮低保待遇」
    ly(
        "minimum_living",
        "migrant_worker_36_months_in_town",
        lambda: rural_in_liaoyuan().job(LY, date(2021, 7, 1)),
        True,
        rural_hukou=True,
        lives_in_town=True,
        continuous_residence_months=True,
        **{"migrant_worker_family.employed_in_city": True},
    ),
    ly(
        "minimum_living",
        "migrant_worker_35_months_in_town",
        lambda: rural_in_liaoyuan(since=date(2021, 7, 1)).job(LY, date(2021, 7, 1)),
        False,
        continuous_residence_months=False,
    ),
    ly(
        "minimum_living",
        "urban_hukou",
        lambda: rural_in_liaoyuan(urban_hukou=True).job(LY, date(2021, 7, 1)),
        False,
        rural_hukou=False,
    ),
    ly(
        "minimum_living",
        "living_in_a_village",
        lambda: rural_in_liaoyuan(town=False).job(LY, date(2021, 7, 1)),
        False,
        lives_in_town=False,
    ),
    ly(
        "minimum_living",
        "other_rural_resident_insured_36_months",
        lambda: (
            rural_in_liaoyuan()
            .insured("medical_resident", LY, date(2021, 6, 1))
            .paid("medical_resident", date(2021, 6, 1), 36)
        ),
        True,
        **{"migrant_worker_family.employed_in_city": False, "insured_rural_resident.insurance_months": True},
    ),
    ly(
        "minimum_living",
        "neither_working_nor_insured",
        rural_in_liaoyuan,
        False,
        False,  # a land-requisitioned farmer would qualify, and no event records a requisition
        **{"insured_rural_resident.insurance_months": False},
    ),
    ly(
        "minimum_living",
        "no_hukou_on_record",
        lambda: History(MIGRANT).residence(LY, date(2021, 6, 30)).job(LY, date(2021, 7, 1)),
        False,
        False,
        rural_hukou=None,
    ),
]


def schooling_cases(policy: str, region: str) -> list[Case]:
    """Preschool and the entrance examination after compulsory schooling for children who came with their parents
    (Xining 4(7), Feicheng 5(2)「随迁子女在流入地接受……普惠性学前教育……以及接受义务教育后参加升学考试」)."""

    def case(benefit: str, name: str, build: Callable[[], Built], eligible: bool, **r: bool | None) -> Case:
        return Case(f"{policy}/{benefit}/{name}", policy, benefit, build, eligible, r)

    def lives_here() -> History:
        return History(MOTHER).residence(region, date(2023, 1, 1))

    return [
        case(
            "preschool",
            "age_3_mother_lives_here",
            lambda: with_parents(ly_kid(date(2021, 6, 30)), mother=lives_here()),
            True,
            age=True,
            **{"mother_permit.mother_permit": True},
        ),
        case(
            "preschool", "age_2", lambda: with_parents(ly_kid(date(2021, 7, 1)), mother=lives_here()), False, age=False
        ),
        case("preschool", "age_6", lambda: with_parents(ly_kid(AGE_6), mother=lives_here()), False, age=False),
        case(
            "preschool",
            "mother_lives_elsewhere",
            lambda: with_parents(ly_kid(AGE_5), mother=History(MOTHER).residence(ELSEWHERE, date(2023, 1, 1))),
            False,
            **{"mother_permit.mother_permit": False},
        ),
        case(
            "senior_high_school",
            "at_junior_school_here",
            lambda: with_parents(
                school_child(primary_in=None, junior_in=region, junior_on=date(2023, 9, 1)), mother=lives_here()
            ),
            True,
            at_school_in_city=True,
            **{"mother_permit.mother_permit": True},
        ),
        case(
            "senior_high_school",
            "at_junior_school_elsewhere",
            lambda: with_parents(
                school_child(primary_in=None, junior_in=ELSEWHERE, junior_on=date(2023, 9, 1)), mother=lives_here()
            ),
            False,
            at_school_in_city=False,
        ),
        case(
            "senior_high_school",
            "mother_lives_elsewhere",
            lambda: with_parents(
                school_child(primary_in=None, junior_in=region, junior_on=date(2023, 9, 1)),
                mother=History(MOTHER).residence(ELSEWHERE, date(2023, 1, 1)),
            ),
            False,
            **{"mother_permit.mother_permit": False},
        ),
        case(
            "preschool",
            "local_hukou",
            lambda: History(child_born(AGE_5)).born(region, AGE_5),
            True,
            **{"local_hukou.hukou_in_city": True},
        ),
        case(
            "senior_high_school",
            "local_hukou",
            lambda: (
                History(child_born(date(2009, 8, 1)))
                .born(region, date(2009, 8, 1))
                .enrolled(region, "junior_secondary", date(2023, 9, 1))
            ),
            True,
            **{"local_hukou.hukou_in_city": True},
        ),
    ]


SCHOOLING = [
    *schooling_cases("xining-2015", XN),
    *schooling_cases("feicheng-2016", FC),
    # Xining 4(5)「鼓励引导寺院僧人将户口迁入居住地」
    Case(
        "xining-2015/monastic_settlement/not_assessable",
        "xining-2015",
        "monastic_settlement",
        migrant,
        False,
        {"not_assessable": None},
        None,
        False,
    ),
    # Xining annex (4)「符合条件的居住证持有人,可以在居住地申请登记常住户口」
    Case(
        "xining-2015/permit_settlement/permit_holder",
        "xining-2015",
        "permit_settlement",
        lambda: migrant().permit(XN, date(2024, 1, 1)),
        False,
        {"valid_permit_in_city": True, "not_assessable": None},
        None,
        False,
    ),
    Case(
        "xining-2015/permit_settlement/no_permit",
        "xining-2015",
        "permit_settlement",
        migrant,
        False,
        {"valid_permit_in_city": False},
    ),
    Case(
        "xining-2015/permit_settlement/deceased",
        "xining-2015",
        "permit_settlement",
        lambda: migrant().permit(XN, date(2023, 1, 1)).died(date(2024, 1, 2)),
        False,
        {"alive": False},
    ),
    Case(
        "xining-2015/monastic_settlement/deceased",
        "xining-2015",
        "monastic_settlement",
        lambda: migrant().died(date(2024, 1, 2)),
        False,
        {"alive": False},
    ),
]


BASE_CASES: list[Case] = [
    *(c for city in CITIES for c in residence_permit_cases(city)),
    *(c for city in CITIES for c in compulsory_education_cases(city)),
    *NANTONG,
    *FEICHENG,
    *LIAOYUAN,
    *CHENGDU,
    *XINING,
    *CHENGDU_PERMIT_RIGHTS,
    *LIAOYUAN_PERMIT_RIGHTS,
    *NANTONG_PERMIT_RIGHTS,
    *FEICHENG_PERMIT_RIGHTS,
    *FAMILY_FOLLOWS,
    *BEYOND_SETTLEMENT,
    *SCHOOLING,
]


def _deceased(case: Case) -> Case:
    """``case`` (an eligible one) with the subject's death registered before ``as_of``: never eligible."""

    def build() -> Built:
        built = case.build()
        history = built[0] if isinstance(built, tuple) else built
        history.died(date(2024, 1, 2))
        return built

    return Case(f"{case.id}/then_deceased", case.policy, case.benefit, build, False, {"alive": False})


def _deceased_cases() -> Iterator[Case]:
    done = {(c.policy, c.benefit) for c in BASE_CASES if c.reasons.get("alive") is False}
    for case in BASE_CASES:
        if case.eligible and (case.policy, case.benefit) not in done:
            done.add((case.policy, case.benefit))
            yield _deceased(case)


CASES: list[Case] = [*BASE_CASES, *_deceased_cases()]


def _run(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    built = case.build()
    history, parents, relatives = (*built, [])[:3] if isinstance(built, tuple) else (built, [], [])
    answer = decide(rules_of(case.policy), history.citizen, history.events, case.as_of, parents, (), relatives)
    decision = next(d for d in answer["decisions"] if d["benefit"] == case.benefit)
    return answer, decision


def rules_of(policy_id: str) -> Policy:
    """The policy's clauses without its window in force: each case checks clauses on their own, for the day of its
    history, after a plan may have expired (``test_a_plan_applies_only_while_in_force`` checks the windows)."""
    return load_policy(policy_id).model_copy(update={"in_force": None})


def _outcomes(decision: dict[str, Any]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for reason in decision["reasons"]:
        key = f"{reason['route']}.{reason['condition']}" if "route" in reason else reason["condition"]
        out[key] = reason["met"]
    return out


def test_the_cases_have_unique_ids() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case) -> None:
    answer, decision = _run(case)
    outcomes = _outcomes(decision)
    expected = {k: outcomes.get(k, "absent") for k in case.reasons}
    assert expected == case.reasons, [r["text"] for r in decision["reasons"]]
    assert decision["eligible"] is case.eligible, [r["text"] for r in decision["reasons"]]
    assert decision["conclusive"] is case.conclusive
    if case.score is not None:
        assert decision["score"] == case.score, decision["score_breakdown"]
        assert sum(i["points"] for i in decision["score_breakdown"]) == decision["score"]
    # Every decision names its clause, every condition says in words what it found.
    assert decision["rule"]["ref"].startswith(case.policy) and decision["rule"]["quote"]
    assert all(r["text"] and r["met"] in (True, False, None) for r in decision["reasons"])
    # The answer is JSON as it stands (the API and the CLI print it unchanged).
    assert orjson.loads(orjson.dumps(answer)) == answer
    assert answer["as_of"] == case.as_of.isoformat() and answer["policy"] == case.policy


ONE_SIDED_BY_DESIGN = {
    # Feicheng's business route (2(1)3) can never be assessed, so "qualifies by no route" is never certain.
    ("feicheng-2016", "collective_household", "qualifies_for_settlement"),
    # A person without hukou is never found by the register: the condition is failed or not assessable.
    ("feicheng-2016", "no_hukou_registration", "no_hukou"),
}


def test_every_condition_is_taken_to_its_met_and_failed_side() -> None:
    seen: dict[tuple[str, str, str], set[bool | None]] = {}
    for case in CASES:
        _, decision = _run(case)
        for key, met in _outcomes(decision).items():
            seen.setdefault((case.policy, case.benefit, key.split(".")[-1]), set()).add(met)
    # ``parent_permit`` only appears when no parent is on record at all, ``family`` when no relative is: both are
    # failed by construction; ``spouse_not_linked`` is not assessable by construction.
    one_sided = {
        key: sides
        for key, sides in seen.items()
        if key[2] not in ("not_assessable", "parent_permit", "family", "spouse_not_linked")
        and key not in ONE_SIDED_BY_DESIGN
        and not {True, False} <= sides
    }
    assert not one_sided


def test_every_policy_and_benefit_has_cases() -> None:
    covered = {(c.policy, c.benefit) for c in CASES}
    for city in CITIES:
        policy = load_policy(city.policy)
        for benefit in policy.benefits:
            assert (city.policy, benefit) in covered, (city.policy, benefit)


# Each plan's window in force, in its own words, with the days either side of each bound it states.
WINDOWS = [
    # 成都: "本意见自2018年1月1日起施行,有效期5年。"
    ("chengdu-2017", date(2017, 12, 31), False),
    ("chengdu-2017", date(2018, 1, 1), True),
    ("chengdu-2017", date(2022, 12, 31), True),
    ("chengdu-2017", date(2023, 1, 1), False),
    # 西宁: "本方案自下发之日起实施,有效期至2020年7月5日。" (the notice is dated 2015年7月6日)
    ("xining-2015", date(2015, 7, 5), False),
    ("xining-2015", date(2015, 7, 6), True),
    ("xining-2015", date(2020, 7, 5), True),
    ("xining-2015", date(2020, 7, 6), False),
    # 南通: no date of effect stated; dated 2020年4月24日, no expiry.
    ("nantong-2020", date(2020, 4, 23), False),
    ("nantong-2020", date(2020, 4, 24), True),
    ("nantong-2020", date(2040, 1, 1), True),
    # 肥城 (肥政发【2016】3号) and 辽源: no date stated; assumed from the start of the year, no expiry.
    ("feicheng-2016", date(2015, 12, 31), False),
    ("feicheng-2016", date(2016, 1, 1), True),
    ("liaoyuan-2015", date(2014, 12, 31), False),
    ("liaoyuan-2015", date(2040, 1, 1), True),
]


@pytest.mark.parametrize(("policy_id", "day", "in_force"), WINDOWS, ids=lambda v: str(v))
def test_a_plan_applies_only_while_in_force(policy_id: str, day: date, in_force: bool) -> None:
    history = migrant()
    policy = load_policy(policy_id)
    answer = decide(policy, history.citizen, history.events, day)
    assert answer["in_force"]["on_as_of"] is in_force
    for decision in answer["decisions"]:
        first = decision["reasons"][0]
        assert first["condition"] == "in_force" and first["met"] is in_force, first
        assert ("was in force" in first["text"]) is in_force and policy.document in first["text"]
        if not in_force:  # whatever else holds, the plan did not apply that day, and the answer says so
            assert decision["eligible"] is False and decision["conclusive"] is True
    # The same day with the clauses alone gives the same other conditions: the window only adds its own.
    alone = decide(rules_of(policy_id), history.citizen, history.events, day)
    for with_window, without in zip(answer["decisions"], alone["decisions"], strict=True):
        assert with_window["reasons"][1:] == without["reasons"]
