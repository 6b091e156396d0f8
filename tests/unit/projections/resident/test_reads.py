"""``reads.ResidentRows``: the rules of precedence by which every reader assembles a resident's family rows."""

from __future__ import annotations

from datetime import date

from projections.resident.reads import ResidentRows

ME = "110101199003070011"
MOTHER = "110101196501010020"
FATHER = "110101196301010017"
OTHER_MOTHER = "110101197001010026"
CHILD = "110101202001010013"
SECOND_CHILD = "110101202201010018"


def test_a_registered_parent_outranks_what_health_and_a_certificate_say() -> None:
    rows = ResidentRows(ME)
    rows.parent("mother", MOTHER)  # public security's link, fed first (PARENT_RANK)
    rows.parent("mother", OTHER_MOTHER)  # health's, silent where public security spoke
    rows.certificate("C1", OTHER_MOTHER, FATHER, None, None, None, ME)
    stored = rows.resident({})
    assert (stored.mother, stored.father) == (MOTHER, FATHER)  # the certificate fills in only the father


def test_a_certificate_names_a_parent_only_of_its_child() -> None:
    rows = ResidentRows(ME)
    rows.certificate("C1", MOTHER, FATHER, "小明", "M", date(2020, 1, 1), CHILD)  # I am not its child...
    stored = rows.resident({})
    assert (stored.mother, stored.father) == (None, None)
    assert stored.children == []  # ...nor its mother or father


def test_children_from_links_are_completed_by_their_certificates_and_sorted_by_birth() -> None:
    rows = ResidentRows(ME)
    rows.child(SECOND_CHILD)
    rows.child(CHILD)
    rows.certificate("C2", ME, None, "小红", "F", date(2022, 1, 1), SECOND_CHILD)
    rows.certificate("C1", ME, FATHER, "小明", None, "2020-01-01", CHILD)
    rows.certificate("C0", MOTHER, ME, "未落户", "M", date(2024, 5, 1), None)  # a child with no number yet
    assert rows.resident({}).children == [
        {"citizen_id": CHILD, "name": "小明", "birth_date": "2020-01-01", "certificate_no": "C1"},
        {
            "citizen_id": SECOND_CHILD,
            "name": "小红",
            "sex": "F",
            "birth_date": "2022-01-01",
            "certificate_no": "C2",
        },
        {"citizen_id": None, "name": "未落户", "sex": "M", "birth_date": "2024-05-01", "certificate_no": "C0"},
    ]


def test_the_household_is_its_members_in_the_order_fed() -> None:
    rows = ResidentRows(ME)
    rows.member("H1", FATHER, "father")
    rows.member("H1", ME, "self")
    stored = rows.resident({})
    assert stored.household_id == "H1"
    assert stored.household_members == [
        {"citizen_id": FATHER, "relationship": "father"},
        {"citizen_id": ME, "relationship": "self"},
    ]


def test_without_rows_a_resident_has_no_family() -> None:
    stored = ResidentRows(ME).resident({})
    assert (stored.mother, stored.father, stored.children, stored.household_id, stored.household_members) == (
        None,
        None,
        [],
        None,
        [],
    )
