"""Family facts extracted from events, and household membership from the public-security state."""

from __future__ import annotations

from datetime import date

from events.examples import example_events
from projections.resident import (
    BirthCertificate,
    Membership,
    ParentLink,
    PublicSecurityState,
    family_facts,
    fold,
    household_membership,
)
from tests.unit.test_projection_support import CHILD, FATHER, MIGRANT, MOTHER, ev


def test_birth_registration_links_both_parents_and_the_certificate() -> None:
    assert family_facts(ev("birth.registered")) == [
        ParentLink(CHILD, MOTHER, "mother", "public_security"),
        ParentLink(CHILD, FATHER, "father", "public_security"),
        BirthCertificate(
            certificate_no="Q510012345",
            mother_citizen_id=MOTHER,
            father_citizen_id=FATHER,
            child_name="李沐阳",
            child_sex="male",
            birth_date=date(2024, 5, 1),
            child_citizen_id=CHILD,
            department="public_security",
        ),
    ]


def test_birth_registration_without_parents_or_certificate_states_nothing() -> None:
    payload = ev("birth.registered").payload.model_dump(
        mode="json", exclude={"mother_citizen_id", "father_citizen_id", "birth_certificate_no"}
    )
    assert family_facts(ev("birth.registered", payload, replace=True)) == []
    only_father = {**payload, "father_citizen_id": FATHER}
    assert family_facts(ev("birth.registered", only_father, replace=True)) == [
        ParentLink(CHILD, FATHER, "father", "public_security")
    ]


def test_birth_certification_names_the_mother_as_subject_and_no_child_id() -> None:
    assert family_facts(ev("birth.certified")) == [
        BirthCertificate(
            certificate_no="Q510012345",
            mother_citizen_id=MOTHER,
            father_citizen_id=FATHER,
            child_name="李沐阳",
            child_sex="male",
            birth_date=date(2024, 5, 1),
            child_citizen_id=None,
            department="health",
        )
    ]


def test_both_sides_of_a_birth_share_the_certificate_number() -> None:
    [certified] = family_facts(ev("birth.certified"))
    registered = family_facts(ev("birth.registered"))[-1]
    assert isinstance(certified, BirthCertificate) and isinstance(registered, BirthCertificate)
    assert certified.certificate_no == registered.certificate_no
    assert (certified.mother_citizen_id, registered.child_citizen_id) == (MOTHER, CHILD)


def test_other_events_state_no_family_facts() -> None:
    others = set(example_events()) - {"birth.registered", "birth.certified"}
    for event_type in others:
        assert family_facts(ev(event_type)) == [], event_type


def test_household_membership_only_while_registered() -> None:
    assert household_membership(PublicSecurityState()) is None
    registered = fold([ev("hukou.registered")])["public_security"]
    assert isinstance(registered, PublicSecurityState)
    membership = household_membership(registered)
    assert membership == Membership("510107-00023456", "family", "head", "510107")
    household_id, household_type, relationship, region_code = membership  # a tuple as well
    assert (household_id, household_type, relationship, region_code) == membership
    moved = fold([ev("hukou.registered"), ev("hukou.moved_out", citizen=MIGRANT)])["public_security"]
    assert isinstance(moved, PublicSecurityState)
    assert household_membership(moved) is None
