"""``apply``: one test (at least) per event type of the catalogue, and the contract's numeric rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

import pytest

from events import EVENT_TYPES, Department, Event, Payload
from events.examples import example_events
from events.parsing import parse_event
from projections.resident import (
    EducationState,
    HealthState,
    ProjectionError,
    PublicSecurityState,
    SocialSecurityState,
    apply,
    fold,
    fold_by_citizen,
    initial_state,
)
from projections.resident.apply import handle_payload
from tests.support.projection import (
    CHILD,
    EMPLOYER_A,
    EMPLOYER_B,
    FATHER,
    MIGRANT,
    MOTHER,
    ev,
    states_of,
)


def ps_of(*events: Event[Payload]) -> PublicSecurityState:
    state = states_of(events)["public_security"]
    assert isinstance(state, PublicSecurityState)
    return state


def ed_of(*events: Event[Payload]) -> EducationState:
    state = states_of(events)["education"]
    assert isinstance(state, EducationState)
    return state


def ss_of(*events: Event[Payload]) -> SocialSecurityState:
    state = states_of(events)["social_security"]
    assert isinstance(state, SocialSecurityState)
    return state


def hs_of(*events: Event[Payload]) -> HealthState:
    state = states_of(events)["health"]
    assert isinstance(state, HealthState)
    return state


# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------


def test_every_event_type_of_the_catalogue_has_a_handler() -> None:
    for event_type, payload_cls in EVENT_TYPES.items():
        assert handle_payload.dispatch(payload_cls) is not handle_payload.dispatch(object), event_type
    assert len(EVENT_TYPES) == 31


@pytest.mark.parametrize("event_type", sorted(example_events()))
def test_every_example_applies_to_its_department_and_is_refused_by_the_others(event_type: str) -> None:
    event = ev(event_type)
    department = event.payload.department
    before = initial_state(department)
    after = apply(before, event)
    assert after != before or event_type in {
        # Examples that act on something the empty state does not have yet.
        "residence.ended",
        "residence_permit.renewed",
        "residence_permit.revoked",
        "employment.ended",
        "unemployment.ended",
        "insurance.stopped",
        # §12: their effect is the alias projection's (projections.resident.aliases), no section's.
        "identity.number_changed",
        "identity.duplicate_merged",
    }
    assert before == initial_state(department)  # the old state is untouched
    for other in ("public_security", "education", "social_security", "health"):
        if other != department:
            with pytest.raises(ProjectionError, match=f"belongs to {department}"):
                apply(initial_state(other), event)


def test_fold_refuses_the_events_of_two_citizens() -> None:
    with pytest.raises(ProjectionError, match="one citizen"):
        fold([ev("hukou.cancelled", citizen=MOTHER), ev("hukou.cancelled", citizen=FATHER)])


def test_fold_continues_from_given_states_and_fold_by_citizen_groups() -> None:
    first = fold([ev("birth.registered")])
    later = fold([ev("identity.corrected", {"name": "李沐晨"}, replace=True, citizen=CHILD)], first)
    assert isinstance(later["public_security"], PublicSecurityState)
    assert later["public_security"].identity.name == "李沐晨"
    grouped = fold_by_citizen([ev("birth.registered"), ev("birth.certified"), ev("vaccination.recorded")])
    assert set(grouped) == {CHILD, MOTHER}
    assert set(grouped[CHILD]) == {"public_security", "health"}


def test_initial_state_rejects_an_unknown_department() -> None:
    with pytest.raises(ValueError, match="unknown department"):
        initial_state("tax")


# ---------------------------------------------------------------------------------------------------------
# Public security
# ---------------------------------------------------------------------------------------------------------


def test_birth_registered_sets_identity_and_a_birth_hukou() -> None:
    ps = ps_of(ev("birth.registered"))
    assert ps.identity.name == "李沐阳"
    assert ps.identity.sex == "male"
    assert ps.identity.birth_date == date(2024, 5, 1)
    assert ps.identity.ethnicity == "汉族"
    hukou = ps.hukou
    assert (hukou.status, hukou.reason, hukou.registered_on) == ("registered", "birth", date(2024, 5, 1))
    assert (hukou.household_id, hukou.household_type, hukou.relationship) == (
        "510107-00012345",
        "family",
        "child",
    )
    assert (hukou.region_code, hukou.urban) == ("510107", True)
    assert hukou.history == ()


def test_hukou_registered_uses_the_business_date_in_china_and_closes_the_previous_hukou() -> None:
    late_utc = datetime(2022, 8, 14, 20, 0, tzinfo=UTC)  # 2022-08-15 04:00 in China
    ps = ps_of(
        ev(
            "hukou.registered",
            {"household_id": "H1", "region_code": "630102"},
            citizen=MIGRANT,
            on=date(2015, 1, 5),
        ),
        ev("hukou.registered", {"household_id": "H2"}, citizen=MIGRANT, on=late_utc),
    )
    assert ps.hukou.status == "registered"
    assert ps.hukou.household_id == "H2"
    assert ps.hukou.registered_on == date(2022, 8, 15)
    assert ps.hukou.reason == "points"
    assert ps.hukou.from_region_code == "630102"
    assert ps.hukou.legacy_nature == "agricultural"
    [earlier] = ps.hukou.history
    assert (earlier.region_code, earlier.household_id) == ("630102", "H1")
    assert (earlier.registered_on, earlier.ended_on, earlier.ended_by) == (
        date(2015, 1, 5),
        date(2022, 8, 15),
        "registered",
    )


def test_hukou_moved_out_closes_the_registration_once() -> None:
    ps = ps_of(
        ev("birth.registered", citizen=FATHER, on=date(1988, 11, 25)),
        ev("hukou.moved_out", citizen=FATHER, on=date(2023, 3, 2)),
    )
    assert ps.hukou.status == "moved_out"
    assert (ps.hukou.moved_out_to, ps.hukou.moved_out_on) == ("510104", date(2023, 3, 2))
    assert ps.hukou.region_code == "510107"  # the last registration stays readable
    [period] = ps.hukou.history
    assert (period.ended_by, period.ended_on, period.reason) == ("moved_out", date(2023, 3, 2), "birth")
    # Settling again later does not put the moved-out period into the history a second time.
    back = apply(ps, ev("hukou.registered", {"reason": "return"}, citizen=FATHER, on=date(2024, 1, 1)))
    assert isinstance(back, PublicSecurityState)
    assert len(back.hukou.history) == 1
    assert back.hukou.status == "registered"
    assert (back.hukou.moved_out_to, back.hukou.moved_out_on) == (None, None)


def test_hukou_cancelled_for_death_sets_deceased_on() -> None:
    ps = ps_of(
        ev("hukou.registered", {"reason": "other"}, citizen=MIGRANT, on=date(2000, 1, 1)),
        ev("hukou.cancelled", citizen=MIGRANT, on=date(2024, 12, 10)),
    )
    assert (ps.hukou.status, ps.hukou.cancelled_reason, ps.hukou.cancelled_on) == (
        "cancelled",
        "death",
        date(2024, 12, 10),
    )
    assert ps.deceased_on == date(2024, 12, 10)
    assert ps.hukou.history[-1].ended_by == "cancelled"


def test_hukou_cancelled_for_another_reason_is_not_a_death() -> None:
    ps = ps_of(ev("hukou.cancelled", {"reason": "emigration"}, citizen=MIGRANT))
    assert ps.hukou.status == "cancelled"
    assert ps.deceased_on is None
    assert ps.hukou.history == ()  # nothing was open to close


def test_identity_corrected_changes_only_the_fields_given() -> None:
    born = ev("birth.registered")
    ps = ps_of(born, ev("identity.corrected", {"ethnicity": "回族"}, replace=True, citizen=CHILD))
    assert (ps.identity.name, ps.identity.ethnicity) == ("李沐阳", "回族")
    ps = ps_of(born, ev("identity.corrected", {"name": "李沐晨"}, replace=True, citizen=CHILD))
    assert (ps.identity.name, ps.identity.ethnicity) == ("李沐晨", "汉族")


def test_registrations_name_a_person_born_elsewhere_but_never_override_public_securitys_own() -> None:
    # Settling in or registering residence carries the identity (v2): the view is no longer anonymous.
    settled = ps_of(ev("hukou.registered"))
    assert (settled.identity.name, settled.identity.sex, settled.identity.ethnicity) == ("马海龙", "male", "回族")
    assert settled.identity.birth_date == date(1995, 7, 14)
    registered = ps_of(ev("residence.registered", {"ethnicity": None}))
    assert (registered.identity.name, registered.identity.ethnicity) == ("马海龙", None)
    # A correction stands against what a later registration repeats; a missing field is still filled.
    corrected = ev("identity.corrected", {"name": "马海鸿"}, replace=True, citizen=MIGRANT)
    later = ev("hukou.registered", {"name": "马海龙", "ethnicity": "回族"})
    ps = ps_of(ev("residence.registered", {"ethnicity": None}), corrected, later)
    assert (ps.identity.name, ps.identity.ethnicity) == ("马海鸿", "回族")
    # A v1 registration (no identity) reads as v2 with none: nothing changes.
    raw = example_events()["hukou.registered"]
    raw["schema_version"] = 1
    for field in ("name", "sex", "birth_date", "ethnicity"):
        del raw["payload"][field]
    v1 = parse_event(raw)
    assert v1.schema_version == 2 and ps_of(v1).identity.name is None


def test_residence_registered_moves_the_previous_registration_to_the_history() -> None:
    ps = ps_of(
        ev("residence.registered", {"since": "2019-03-01"}),
        ev("residence.registered", {"since": "2021-07-01", "region_code": "510104", "tenure": "owned"}),
    )
    assert ps.residence_registration is not None
    assert (ps.residence_registration.region_code, ps.residence_registration.since) == (
        "510104",
        date(2021, 7, 1),
    )
    assert ps.residence_registration.tenure == "owned"
    [ended] = ps.residence_history
    assert (ended.since, ended.ended_on, ended.basis) == (date(2019, 3, 1), date(2021, 7, 1), "employment")


def test_residence_ended_closes_the_registration_and_is_harmless_without_one() -> None:
    ps = ps_of(ev("residence.registered"), ev("residence.ended"))
    assert ps.residence_registration is None
    assert ps.residence_history[-1].ended_on == date(2022, 8, 15)
    assert ps_of(ev("residence.ended")) == PublicSecurityState()


def test_permit_issued_renewed_revoked() -> None:
    issued = ev("residence_permit.issued")
    ps = ps_of(issued)
    assert ps.permit is not None
    assert (ps.permit.valid_until, ps.permit.renewals, ps.permit.revoked) == (date(2020, 8, 31), 0, False)
    ps = ps_of(issued, ev("residence_permit.renewed"))
    assert ps.permit is not None
    assert (ps.permit.valid_until, ps.permit.renewals) == (date(2021, 8, 31), 1)
    ps = ps_of(issued, ev("residence_permit.renewed"), ev("residence_permit.revoked", on=date(2022, 8, 15)))
    assert ps.permit is not None
    assert (ps.permit.revoked, ps.permit.revoked_reason, ps.permit.revoked_on) == (
        True,
        "已在本市落户",
        date(2022, 8, 15),
    )


def test_renewal_or_revocation_of_another_permit_number_changes_nothing() -> None:
    issued = ps_of(ev("residence_permit.issued"))
    for event_type in ("residence_permit.renewed", "residence_permit.revoked"):
        assert apply(issued, ev(event_type, {"permit_no": "OTHER-1"})) == issued


def test_a_new_permit_keeps_the_earlier_one_in_the_history() -> None:
    ps = ps_of(
        ev("residence_permit.issued"),
        ev(
            "residence_permit.issued",
            {"permit_no": "P2", "issued_on": "2023-01-01", "valid_until": "2024-01-01"},
        ),
    )
    assert ps.permit is not None and ps.permit.permit_no == "P2"
    assert [p.permit_no for p in ps.permit_history] == ["510107201900123"]


# ---------------------------------------------------------------------------------------------------------
# Education
# ---------------------------------------------------------------------------------------------------------


def test_student_enrolled_sets_the_current_school() -> None:
    ed = ed_of(ev("student.enrolled"))
    assert ed.current is not None
    assert (ed.current.school_code, ed.current.stage, ed.current.grade, ed.current.since) == (
        "2151010701",
        "primary",
        1,
        date(2022, 9, 1),
    )
    assert ed.current.migrant_child is True
    assert [h.kind for h in ed.history] == ["enrolled"]


def test_student_transferred_updates_school_region_and_since() -> None:
    ed = ed_of(ev("student.enrolled"), ev("student.transferred", {"region_code": "510104"}))
    assert ed.current is not None
    assert (ed.current.school_code, ed.current.region_code, ed.current.since) == (
        "2151010702",
        "510104",
        date(2024, 2, 26),
    )
    assert (ed.current.stage, ed.current.student_no) == ("primary", "G630102201609010020")
    assert [(h.kind, h.school_code, h.stage) for h in ed.history] == [
        ("enrolled", "2151010701", "primary"),
        ("transferred", "2151010702", "primary"),
    ]


def test_a_transfer_without_an_enrolment_is_only_history() -> None:
    ed = ed_of(ev("student.transferred"))
    assert ed.current is None
    assert [(h.kind, h.school_code, h.stage) for h in ed.history] == [("transferred", "2151010702", None)]


def test_student_graduated_ends_the_schooling() -> None:
    ed = ed_of(
        ev("student.enrolled", citizen=MOTHER),
        ev("student.graduated", {"stage": "primary", "graduated_on": "2028-07-01"}, citizen=MOTHER),
    )
    assert ed.current is None
    last = ed.history[-1]
    assert (last.kind, last.stage, last.on, last.qualification, last.school_code) == (
        "graduated",
        "primary",
        date(2028, 7, 1),
        "工学学士",
        "2151010701",
    )


def test_student_withdrawn_ends_the_schooling() -> None:
    ed = ed_of(ev("student.enrolled", citizen=MIGRANT), ev("student.withdrawn"))
    assert ed.current is None
    last = ed.history[-1]
    assert (last.kind, last.on, last.reason, last.school_code) == (
        "withdrawn",
        date(2011, 1, 15),
        "外出务工",
        "2151010701",
    )


# ---------------------------------------------------------------------------------------------------------
# HR and social security
# ---------------------------------------------------------------------------------------------------------


def test_employment_registered_adds_an_employer_and_replaces_the_same_one() -> None:
    ss = ss_of(
        ev("employment.registered"),
        ev("employment.registered", {"employer_code": EMPLOYER_B, "employer_name": "乙公司"}),
        ev("employment.registered", {"started_on": "2020-01-01", "contract": "open_ended"}),
    )
    assert [(e.employer_code, e.started_on, e.contract) for e in ss.employers] == [
        (EMPLOYER_B, date(2019, 3, 1), "fixed_term"),
        (EMPLOYER_A, date(2020, 1, 1), "open_ended"),
    ]


def test_employment_ended_moves_the_job_to_the_history() -> None:
    ss = ss_of(ev("employment.registered"), ev("employment.ended"))
    assert ss.employers == ()
    [job] = ss.employment_history
    assert (job.employer_code, job.started_on, job.ended_on, job.reason) == (
        EMPLOYER_A,
        date(2019, 3, 1),
        date(2023, 6, 30),
        "劳动合同期满",
    )
    # Ending an employment that is not open changes nothing.
    assert ss_of(ev("employment.ended")) == SocialSecurityState()


def test_unemployment_registered_and_ended() -> None:
    ss = ss_of(ev("unemployment.registered"))
    assert ss.unemployment is not None and ss.unemployment.registered_on == date(2023, 7, 5)
    ss = ss_of(ev("unemployment.registered"), ev("unemployment.ended"))
    assert ss.unemployment is None
    assert ss.unemployment_history[-1].ended_on == date(2023, 10, 8)
    assert ss_of(ev("unemployment.ended")) == SocialSecurityState()


def test_insurance_enrolled_and_reenrolment_keeps_the_months() -> None:
    enrolled = ev("insurance.enrolled")
    ss = ss_of(enrolled)
    scheme = ss.schemes["pension_employee"]
    assert (scheme.status, scheme.region_code, scheme.since, scheme.employer_code) == (
        "active",
        "510107",
        date(2019, 3, 1),
        EMPLOYER_A,
    )
    ss = ss_of(
        enrolled,
        ev("insurance.contributed", {"months": 12}),
        ev("insurance.stopped"),
        ev("insurance.enrolled", {"region_code": "510104", "started_on": "2024-01-01"}, replace=False),
    )
    scheme = ss.schemes["pension_employee"]
    assert (scheme.status, scheme.region_code, scheme.since, scheme.stopped_on) == (
        "active",
        "510104",
        date(2024, 1, 1),
        None,
    )
    assert scheme.months_by_region == {"510107": 12}


def test_insurance_contributed_adds_its_months_to_the_current_region_each_time() -> None:
    contribution = ev("insurance.contributed")  # 3 months from 2019-03
    ss = ss_of(
        ev("insurance.enrolled"),
        contribution,
        ev("insurance.contributed", {"period": "2019-12", "months": 2}),
    )
    scheme = ss.schemes["pension_employee"]
    assert scheme.months_by_region == {"510107": 5}
    assert (scheme.first_period, scheme.last_period) == ("2019-03", "2020-01")
    assert scheme.paid_total == Decimal("6913.56")
    # apply() does not de-duplicate: the projector hands each event_id over once, so the same event applied
    # twice here is counted twice — the guard lives in the projector's archive, not in the fold.
    twice = apply(ss, contribution)
    assert isinstance(twice, SocialSecurityState)
    assert twice.schemes["pension_employee"].months_by_region == {"510107": 8}


def test_a_contribution_without_an_enrolment_opens_the_scheme_where_it_was_recorded() -> None:
    ss = ss_of(ev("insurance.contributed", {"scheme": "medical_employee"}, source_region="510104"))
    scheme = ss.schemes["medical_employee"]
    assert (scheme.status, scheme.region_code, scheme.since) == ("active", "510104", date(2019, 3, 1))
    assert scheme.months_by_region == {"510104": 3}


def test_insurance_transferred_moves_months_without_double_counting() -> None:
    transfer = {"from_region_code": "630102", "to_region_code": "510107"}
    ss = ss_of(
        ev("insurance.enrolled", {"region_code": "630102"}),
        ev("insurance.contributed", {"months": 12}),
        ev("insurance.contributed", {"months": 12, "period": "2020-03"}),
        ev("insurance.transferred", {**transfer, "months_carried": 24}),
        ev("insurance.contributed", {"months": 6, "period": "2021-03"}),
    )
    scheme = ss.schemes["pension_employee"]
    assert scheme.region_code == "510107"
    assert scheme.months_by_region == {"510107": 30}
    assert sum(scheme.months_by_region.values()) == 30
    assert scheme.unverified_carried_months == 0


def test_insurance_transfer_is_capped_at_what_the_source_region_holds() -> None:
    transfer = ev("insurance.transferred", {"months_carried": 51})  # 630102 → 510107
    base = ss_of(ev("insurance.enrolled", {"region_code": "630102"}), ev("insurance.contributed", {"months": 10}))
    ss = apply(base, transfer)
    assert isinstance(ss, SocialSecurityState)
    scheme = ss.schemes["pension_employee"]
    assert scheme.months_by_region == {"510107": 10}
    assert scheme.unverified_carried_months == 41
    # The same transfer recorded a second time moves nothing more.
    again = apply(ss, ev("insurance.transferred", {"months_carried": 51}))
    assert isinstance(again, SocialSecurityState)
    assert again.schemes["pension_employee"].months_by_region == {"510107": 10}


def test_a_partial_transfer_leaves_the_rest_in_the_source_region() -> None:
    ss = ss_of(
        ev("insurance.enrolled", {"region_code": "630102"}),
        ev("insurance.contributed", {"months": 12}),
        ev("insurance.transferred", {"months_carried": 5}),
    )
    assert ss.schemes["pension_employee"].months_by_region == {"510107": 5, "630102": 7}


def test_a_transfer_of_an_unknown_scheme_opens_it_in_the_new_region_with_no_months() -> None:
    ss = ss_of(ev("insurance.transferred", on=date(2019, 4, 2)))
    scheme = ss.schemes["pension_employee"]
    assert (scheme.region_code, scheme.since, scheme.months_by_region) == ("510107", date(2019, 4, 2), {})
    assert scheme.unverified_carried_months == 51


def test_insurance_stopped() -> None:
    ss = ss_of(ev("insurance.enrolled"), ev("insurance.stopped"))
    scheme = ss.schemes["pension_employee"]
    assert (scheme.status, scheme.stopped_on, scheme.stopped_reason) == (
        "stopped",
        date(2023, 6, 30),
        "劳动关系终止",
    )
    assert ss_of(ev("insurance.stopped")) == SocialSecurityState()


def test_social_security_card_issued() -> None:
    ss = ss_of(ev("social_security_card.issued"))
    assert (ss.card_no, ss.card_issued_on) == ("A51010712", date(2019, 4, 10))


def test_training_completed_is_appended() -> None:
    ss = ss_of(ev("training.completed"), ev("training.completed", {"program": "焊工培训"}, replace=False))
    assert [t.program for t in ss.trainings] == ["电工职业技能培训", "焊工培训"]
    assert (ss.trainings[0].level, ss.trainings[0].certificate_no) == ("四级", "S000051010000123")


# ---------------------------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------------------------


def test_health_record_opened() -> None:
    hs = hs_of(ev("health_record.opened"))
    assert (hs.record_no, hs.clinic_code, hs.record_opened_on) == (
        "510107-HR-0001234",
        "PDY51010700012",
        date(2019, 5, 6),
    )


def test_family_doctor_contracted_replaces_the_previous_contract() -> None:
    hs = hs_of(
        ev("family_doctor.contracted"),
        ev("family_doctor.contracted", {"started_on": "2025-01-01", "ends_on": "2025-12-31"}, replace=False),
    )
    assert hs.family_doctor is not None
    assert (hs.family_doctor.started_on, hs.family_doctor.ends_on, hs.family_doctor.team) == (
        date(2025, 1, 1),
        date(2025, 12, 31),
        "王医生团队",
    )


def test_vaccination_recorded_counts_and_lists() -> None:
    hs = hs_of(ev("vaccination.recorded"), ev("vaccination.recorded", {"dose": 2, "administered_on": "2024-06-01"}))
    assert hs.vaccinations == 2
    assert [(v.vaccine_code, v.dose) for v in hs.vaccination_history] == [("HepB", 1), ("HepB", 2)]


def test_death_certified() -> None:
    hs = hs_of(ev("death.certified"))
    assert hs.death is not None
    assert (hs.death.died_on, hs.death.certificate_no, hs.death.region_code) == (
        date(2024, 12, 3),
        "D510104202400123",
        "510104",
    )


def test_birth_certified_records_each_certificate_once() -> None:
    hs = hs_of(ev("birth.certified"), ev("birth.certified"), ev("birth.certified", {"certificate_no": "Q2"}))
    assert hs.births_certified == ("Q510012345", "Q2")


def test_a_payload_type_without_a_handler_is_refused() -> None:
    class Unheard(Payload):
        event_type: ClassVar[str] = "rumour.heard"
        department: ClassVar[Department] = "health"

    real = ev("vaccination.recorded")
    event = real.model_copy(update={"payload": Unheard(), "event_type": "rumour.heard"})
    with pytest.raises(ProjectionError, match="no projection handler for Unheard"):
        apply(initial_state("health"), event)


def test_model_copy_of_a_state_equals_a_validated_copy_and_leaves_the_original_alone() -> None:
    from pydantic import ValidationError

    from projections.resident.state import SchemeState

    scheme = SchemeState(status="active", region_code="110101", since=date(2020, 1, 1))
    copied = scheme.model_copy(update={"paid_total": Decimal("12.50"), "months_by_region": {"110101": 3}})
    assert copied == SchemeState(
        status="active",
        region_code="110101",
        since=date(2020, 1, 1),
        paid_total=Decimal("12.50"),
        months_by_region={"110101": 3},
    )
    assert copied.model_fields_set == {"status", "region_code", "since", "paid_total", "months_by_region"}
    assert scheme.paid_total == 0 and scheme.months_by_region == {}
    assert scheme.model_copy() == scheme and scheme.model_copy() is not scheme
    with pytest.raises(ValidationError):
        copied.paid_total = Decimal(1)  # type: ignore[misc]  # still frozen
