"""One valid example event of every type, for tests, the integration test, the JSON Schemas and the docs.

The examples follow a few residents of Chengdu (成都) through the catalogue: a family in Wuhou district,
a worker who came from Xining and settled on points, a migrant child at primary school, and an old man
whose ID carries a division code created decades after his birth. Everything is deterministic (fixed
UUIDs and timestamps), so the examples can be committed inside the JSON Schemas and compared.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any, Final
from uuid import UUID, uuid5

from stdnum.cn import uscc

from events.bounds import CHINA_TZ
from events.citizen_id import make_citizen_id
from events.fields import Department
from events.registry import REGISTRY

__all__ = ["CITIZENS", "EMPLOYER_CODE", "example_event", "example_events"]

_NAMESPACE: Final = UUID("6f1f3c3e-2b7a-5e0c-9d55-6d9c1f0c8a11")


def _uscc(first17: str) -> str:
    return first17 + str(uscc.calc_check_digit(first17 + "0"))


CITIZENS: Final[dict[str, str]] = {
    "mother": make_citizen_id("510107", date(1990, 3, 8), 42),  # 武侯区
    "father": make_citizen_id("510107", date(1988, 11, 20), 31),
    "child": make_citizen_id("510107", date(2024, 5, 1), 15),
    "migrant": make_citizen_id("630102", date(1995, 7, 14), 123),  # 西宁市城东区
    "pupil": make_citizen_id("630102", date(2016, 9, 1), 20),
    # 锦江区 (510104) was created in 1990, long after his birth: valid, he got his number later in life.
    "elder": make_citizen_id("510104", date(1938, 4, 2), 11),
    # §12: a number issued with the wrong birth day (the 2nd for the 3rd), corrected; and a woman registered
    # twice, in Jinjiang and in Wuhou, whose Jinjiang number is cancelled as the duplicate.
    "renumbered": make_citizen_id("510107", date(1985, 2, 3), 57),
    "renumbered_before": make_citizen_id("510107", date(1985, 2, 2), 57),
    "survivor": make_citizen_id("510107", date(1972, 10, 9), 88),
    "duplicate": make_citizen_id("510104", date(1972, 10, 9), 90),
}
"""The example residents' citizen IDs, by role."""

EMPLOYER_CODE: Final = _uscc("91510107MA6C2B3X4")
"""A valid unified social credit code for the example employer."""

_SYSTEMS: Final[dict[Department, str]] = {
    "public_security": "cdga-hukou",
    "education": "cdedu-xueji",
    "social_security": "cdrs-shebao",
    "health": "cdwj-jiankang",
}

# event type: (department, subject, day it happened, payload)
_CATALOGUE: Final[dict[str, tuple[Department, str, date, dict[str, Any]]]] = {
    "birth.registered": (
        "public_security",
        "child",
        date(2024, 5, 20),
        {
            "name": "李沐阳",
            "sex": "male",
            "birth_date": "2024-05-01",
            "ethnicity": "汉族",
            "household_id": "510107-00012345",
            "household_type": "family",
            "relationship": "child",
            "address": "四川省成都市武侯区玉林北路8号2栋1单元302室",
            "region_code": "510107",
            "urban": True,
            "mother_citizen_id": CITIZENS["mother"],
            "father_citizen_id": CITIZENS["father"],
            "birth_certificate_no": "Q510012345",
        },
    ),
    "hukou.registered": (
        "public_security",
        "migrant",
        date(2022, 8, 15),
        {
            "household_id": "510107-00023456",
            "household_type": "family",
            "relationship": "head",
            "address": "四川省成都市武侯区簇桥街道锦城社区12号",
            "region_code": "510107",
            "urban": True,
            "reason": "points",
            "from_region_code": "630102",
            "legacy_nature": "agricultural",
            "name": "马海龙",
            "sex": "male",
            "birth_date": "1995-07-14",
            "ethnicity": "回族",
        },
    ),
    "hukou.moved_out": (
        "public_security",
        "father",
        date(2023, 3, 2),
        {"to_region_code": "510104", "reason": "随配偶迁入锦江区"},
    ),
    "hukou.cancelled": ("public_security", "elder", date(2024, 12, 10), {"reason": "death"}),
    "identity.corrected": ("public_security", "mother", date(2021, 6, 1), {"name": "王晓雯"}),
    "identity.number_changed": (
        "public_security",
        "renumbered",
        date(2023, 4, 12),
        {"previous_citizen_id": CITIZENS["renumbered_before"], "reason": "correction", "changed_on": "2023-04-12"},
    ),
    "identity.duplicate_merged": (
        "public_security",
        "survivor",
        date(2022, 11, 3),
        {"duplicate_citizen_id": CITIZENS["duplicate"], "merged_on": "2022-11-03"},
    ),
    "residence.registered": (
        "public_security",
        "migrant",
        date(2019, 3, 5),
        {
            "address": "四川省成都市武侯区簇桥街道锦城社区12号",
            "region_code": "510107",
            "urban": True,
            "since": "2019-03-01",
            "basis": "employment",
            "tenure": "rented",
            "name": "马海龙",
            "sex": "male",
            "birth_date": "1995-07-14",
            "ethnicity": "回族",
        },
    ),
    "residence.ended": ("public_security", "migrant", date(2022, 8, 15), {"ended_on": "2022-08-15"}),
    "residence_permit.issued": (
        "public_security",
        "migrant",
        date(2019, 9, 1),
        {
            "permit_no": "510107201900123",
            "region_code": "510107",
            "issued_on": "2019-09-01",
            "valid_until": "2020-08-31",
            "basis": "employment",
        },
    ),
    "residence_permit.renewed": (
        "public_security",
        "migrant",
        date(2020, 8, 20),
        {"permit_no": "510107201900123", "valid_until": "2021-08-31"},
    ),
    "residence_permit.revoked": (
        "public_security",
        "migrant",
        date(2022, 8, 15),
        {"permit_no": "510107201900123", "reason": "已在本市落户"},
    ),
    "student.enrolled": (
        "education",
        "pupil",
        date(2022, 9, 1),
        {
            "student_no": "G630102201609010020",
            "school_code": "2151010701",
            "school_name": "成都市武侯区玉林小学",
            "region_code": "510107",
            "stage": "primary",
            "grade": 1,
            "enrolled_on": "2022-09-01",
            "migrant_child": True,
        },
    ),
    "student.transferred": (
        "education",
        "pupil",
        date(2024, 2, 26),
        {
            "school_code": "2151010702",
            "school_name": "成都市武侯区簇桥小学",
            "region_code": "510107",
            "transferred_on": "2024-02-26",
        },
    ),
    "student.graduated": (
        "education",
        "mother",
        date(2012, 6, 30),
        {"stage": "higher", "graduated_on": "2012-06-30", "qualification": "工学学士"},
    ),
    "student.withdrawn": (
        "education",
        "migrant",
        date(2011, 1, 15),
        {"withdrawn_on": "2011-01-15", "reason": "外出务工"},
    ),
    "employment.registered": (
        "social_security",
        "migrant",
        date(2019, 3, 1),
        {
            "employer_code": EMPLOYER_CODE,
            "employer_name": "成都锦城物流有限公司",
            "region_code": "510107",
            "started_on": "2019-03-01",
            "contract": "fixed_term",
        },
    ),
    "employment.ended": (
        "social_security",
        "migrant",
        date(2023, 6, 30),
        {"employer_code": EMPLOYER_CODE, "ended_on": "2023-06-30", "reason": "劳动合同期满"},
    ),
    "unemployment.registered": (
        "social_security",
        "migrant",
        date(2023, 7, 5),
        {"region_code": "510107", "registered_on": "2023-07-05"},
    ),
    "unemployment.ended": ("social_security", "migrant", date(2023, 10, 8), {"ended_on": "2023-10-08"}),
    "insurance.enrolled": (
        "social_security",
        "migrant",
        date(2019, 3, 1),
        {
            "scheme": "pension_employee",
            "region_code": "510107",
            "started_on": "2019-03-01",
            "employer_code": EMPLOYER_CODE,
        },
    ),
    "insurance.contributed": (
        "social_security",
        "migrant",
        date(2019, 6, 10),
        {"scheme": "pension_employee", "period": "2019-03", "months": 3, "amount": "3456.78"},
    ),
    "insurance.transferred": (
        "social_security",
        "migrant",
        date(2019, 4, 2),
        {
            "scheme": "pension_employee",
            "from_region_code": "630102",
            "to_region_code": "510107",
            "months_carried": 51,
        },
    ),
    "insurance.stopped": (
        "social_security",
        "migrant",
        date(2023, 6, 30),
        {"scheme": "pension_employee", "stopped_on": "2023-06-30", "reason": "劳动关系终止"},
    ),
    "social_security_card.issued": (
        "social_security",
        "migrant",
        date(2019, 4, 10),
        {"card_no": "A51010712", "issued_on": "2019-04-10"},
    ),
    "training.completed": (
        "social_security",
        "migrant",
        date(2020, 11, 15),
        {
            "program": "电工职业技能培训",
            "completed_on": "2020-11-15",
            "level": "四级",
            "certificate_no": "S000051010000123",
        },
    ),
    "birth.certified": (
        "health",
        "mother",
        date(2024, 5, 3),
        {
            "certificate_no": "Q510012345",
            "child_name": "李沐阳",
            "child_sex": "male",
            "birth_date": "2024-05-01",
            "father_citizen_id": CITIZENS["father"],
        },
    ),
    "death.certified": (
        "health",
        "elder",
        date(2024, 12, 3),
        {"died_on": "2024-12-03", "certificate_no": "D510104202400123", "region_code": "510104"},
    ),
    "health_record.opened": (
        "health",
        "migrant",
        date(2019, 5, 6),
        {"record_no": "510107-HR-0001234", "clinic_code": "PDY51010700012", "opened_on": "2019-05-06"},
    ),
    "family_doctor.contracted": (
        "health",
        "migrant",
        date(2024, 1, 1),
        {
            "clinic_code": "PDY51010700012",
            "started_on": "2024-01-01",
            "ends_on": "2024-12-31",
            "team": "王医生团队",
        },
    ),
    "vaccination.recorded": (
        "health",
        "child",
        date(2024, 5, 1),
        {"vaccine_code": "HepB", "dose": 1, "administered_on": "2024-05-01", "clinic_code": "PDY51010700045"},
    ),
}


def example_event(event_type: str) -> dict[str, Any]:
    """A valid example event of ``event_type`` (latest schema version) as a JSON-ready dict; a fresh copy.

    Raises ``KeyError`` for a type without an example.
    """
    department, subject, day, payload = _CATALOGUE[event_type]
    occurred = datetime(day.year, day.month, day.day, 10, 30, tzinfo=CHINA_TZ)
    return {
        "event_id": str(uuid5(_NAMESPACE, event_type)),
        "event_type": event_type,
        "schema_version": REGISTRY.latest_version(event_type),
        "citizen_id": CITIZENS[subject],
        "occurred_at": occurred.isoformat(),
        "recorded_at": (occurred + timedelta(hours=2, minutes=15)).isoformat(),
        "source": {"department": department, "system": _SYSTEMS[department], "region_code": "510100"},
        "correlation_id": str(uuid5(_NAMESPACE, f"{subject}/{department}")),
        "payload": copy.deepcopy(payload),
    }


def example_events() -> dict[str, dict[str, Any]]:
    """Event type → a valid example event, for every type of the catalogue, in catalogue order."""
    return {event_type: example_event(event_type) for event_type in _CATALOGUE}
