"""Family facts extracted from events, and household membership from the public-security state."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.examples import example_events
from projections.resident import (
    BirthCertificate,
    CertificateRecord,
    CertificateStatement,
    Membership,
    ParentLink,
    PublicSecurityState,
    certificate_record,
    family_facts,
    fold,
    household_membership,
    merge_certificates,
)
from tests.support.projection import CHILD, FATHER, MIGRANT, MOTHER, ev


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


# -- birth certificates: one record per certificate and mother, whatever the arrival order -----------------------

CERTIFICATE = "Q510012345"


@st.composite
def statements(draw: st.DrawFn) -> CertificateRecord:
    """One department's statement about the certificate of ``MOTHER``, at some time, saying something."""
    registration = draw(st.booleans())
    statement = CertificateStatement(
        event_id=draw(st.uuids()),
        recorded_at=draw(st.sampled_from(RECORDED)),
        father_citizen_id=draw(st.sampled_from([None, FATHER, MIGRANT])),
        child_name=draw(st.sampled_from(["李沐阳", "李木阳"])),
        child_sex=draw(st.sampled_from(["male", "female"])),
        birth_date=draw(st.sampled_from([date(2024, 5, 1), date(2024, 5, 2)])),
        child_citizen_id=CHILD if registration else None,
    )
    if registration:
        return CertificateRecord(CERTIFICATE, MOTHER, registration=statement)
    return CertificateRecord(CERTIFICATE, MOTHER, certification=statement)


# Few distinct instants (written with different offsets), so that ties on recorded_at are common.
RECORDED = [
    datetime(2024, 5, 3, 10, tzinfo=timezone(timedelta(hours=8))),
    datetime(2024, 5, 3, 2, tzinfo=UTC),  # the same instant as the first
    datetime(2024, 5, 9, 10, tzinfo=timezone(timedelta(hours=8))),
]


@given(said=st.lists(statements(), min_size=1, max_size=8), data=st.data())
def test_a_certificate_merges_to_the_same_record_whatever_the_order_and_batching(
    said: list[CertificateRecord], data: st.DataObject
) -> None:
    expected = functools.reduce(merge_certificates, said)
    order = data.draw(st.permutations(said))
    assert functools.reduce(merge_certificates, order) == expected
    # Batches: each merged in memory first (the pipeline), then merged with what is stored (the store), in any order.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    merged = [functools.reduce(merge_certificates, batch) for batch in batches]
    assert functools.reduce(merge_certificates, data.draw(st.permutations(merged))) == expected
    # Merging again what is already in changes nothing.
    assert merge_certificates(expected, data.draw(st.sampled_from(said))) == expected


def test_the_registration_decides_and_the_certificate_fills_in_the_father() -> None:
    registered = family_facts(ev("birth.registered", {"father_citizen_id": None}))[-1]
    [certified] = family_facts(ev("birth.certified", {"child_name": "李木阳"}))
    assert isinstance(registered, BirthCertificate) and isinstance(certified, BirthCertificate)
    moment = datetime(2024, 5, 20, tzinfo=UTC)
    a = certificate_record(registered, uuid4(), moment)
    b = certificate_record(certified, uuid4(), moment)
    assert a is not None and b is not None
    record = merge_certificates(a, b)
    assert (record.child_name, record.child_citizen_id) == ("李沐阳", CHILD)
    assert record.father_citizen_id == FATHER  # the registration names none; the certificate does


def test_two_mothers_certificates_with_one_number_are_two_records() -> None:
    [mine] = family_facts(ev("birth.certified"))
    [theirs] = family_facts(ev("birth.certified", citizen=MIGRANT))
    assert isinstance(mine, BirthCertificate) and isinstance(theirs, BirthCertificate)
    a = certificate_record(mine, uuid4(), datetime(2024, 5, 3, tzinfo=UTC))
    b = certificate_record(theirs, uuid4(), datetime(2024, 5, 3, tzinfo=UTC))
    assert a is not None and b is not None and a.key != b.key
    with pytest.raises(ValueError, match="different certificates"):
        merge_certificates(a, b)


def test_a_registration_that_names_no_mother_keeps_no_certificate_record() -> None:
    payload = ev("birth.registered").payload.model_dump(mode="json", exclude={"mother_citizen_id"})
    [*_, fact] = family_facts(ev("birth.registered", payload, replace=True))
    assert isinstance(fact, BirthCertificate) and fact.mother_citizen_id is None
    assert certificate_record(fact, uuid4(), datetime(2024, 5, 3, tzinfo=UTC)) is None
