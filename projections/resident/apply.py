"""``apply(state, event) -> state``: the pure fold of one department's events into its state.

No I/O, no clock, no database or broker imports: the same function serves the live projector, a rebuild from
offset 0, as-of reconstruction and the tests (ARCHITECTURE decision 3). Dispatch is by the payload's class
(``functools.singledispatch``), one small handler per event type of the catalogue (CONTRACT §4).

Handlers build the new state with ``model_copy(update=...)``: unchanged parts are shared with the old state,
which is safe because every state is immutable, and nothing is validated twice (the event was validated by
``parse_event``).

Handlers are deliberately lenient about events that do not fit the current state: the log is the system of
record and must always fold, so such an event records what it can and never raises:

* ``residence.ended``, ``employment.ended``, ``unemployment.ended``, ``insurance.stopped`` with nothing open,
  and a ``residence_permit.renewed``/``revoked`` whose ``permit_no`` is not the current permit's, leave the
  state unchanged (the event stays in the archive for audit);
* ``student.transferred`` without a current school is recorded in the history only;
* ``insurance.contributed`` without an enrolment opens the scheme, active, in the recording source's region;
* ``insurance.transferred`` moves at most what ``from_region_code`` holds; the rest of ``months_carried`` is
  kept as ``unverified_carried_months`` and never counted;
* a new hukou registration after a cancellation for death clears ``deceased_on`` (the person is alive);
* a ``birth.certified`` whose certificate number is already recorded changes nothing.

Business dates taken from ``occurred_at`` (hukou registered / moved out / cancelled, permit revoked) are the
date in China (``dates.business_date``), whatever offset the producer wrote.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TypeVar

from events.education import Stage, StudentEnrolled, StudentGraduated, StudentTransferred, StudentWithdrawn
from events.envelope import Event, Payload
from events.health import (
    BirthCertified,
    DeathCertified,
    FamilyDoctorContracted,
    HealthRecordOpened,
    VaccinationRecorded,
)
from events.public_security import (
    BirthRegistered,
    CarriedIdentity,
    DuplicateMerged,
    HukouCancelled,
    HukouMovedOut,
    HukouRegistered,
    IdentityCorrected,
    NumberChanged,
    ResidenceEnded,
    ResidencePermitIssued,
    ResidencePermitRenewed,
    ResidencePermitRevoked,
    ResidenceRegistered,
)
from events.social_security import (
    EmploymentEnded,
    EmploymentRegistered,
    InsuranceContributed,
    InsuranceEnrolled,
    InsuranceStopped,
    InsuranceTransferred,
    SocialSecurityCardIssued,
    TrainingCompleted,
    UnemploymentEnded,
    UnemploymentRegistered,
)
from projections.resident.dates import business_date
from projections.resident.state import (
    DeathRecord,
    DepartmentState,
    EducationState,
    EmploymentRecord,
    EndedEmployment,
    EndedResidence,
    EndedUnemployment,
    FamilyDoctor,
    HealthState,
    Hukou,
    HukouEnding,
    HukouPeriod,
    Permit,
    PublicSecurityState,
    ResidenceRegistration,
    SchemeState,
    SchoolEvent,
    SchoolEventKind,
    Schooling,
    SocialSecurityState,
    Training,
    Unemployment,
    Vaccination,
    initial_state,
)

__all__ = ["ProjectionError", "apply", "fold", "fold_by_citizen", "handle_payload"]

AnyEvent = Event[Payload]
S = TypeVar("S", PublicSecurityState, EducationState, SocialSecurityState, HealthState)


class ProjectionError(ValueError):
    """An event cannot be applied: it belongs to another department's state, or has no handler."""


def apply(state: DepartmentState, event: AnyEvent) -> DepartmentState:
    """Fold one event into its department's state and return the new state (the old one is unchanged).

    Raises ``ProjectionError`` if the event belongs to another department than ``state``, or if its payload
    type has no handler. Idempotency is *not* handled here: the projector applies each ``event_id`` once
    (ARCHITECTURE decision 4).
    """
    if event.payload.department != state.department:
        raise ProjectionError(
            f"{event.event_type} ({event.event_id}) belongs to {event.payload.department}, "
            f"not to the {state.department} state"
        )
    return handle_payload(event.payload, state, event)


def fold(
    events: Iterable[AnyEvent], initial: Mapping[str, DepartmentState] | None = None
) -> dict[str, DepartmentState]:
    """Apply ``events`` of **one** citizen in the given order, each to its own department's state.

    Starts from ``initial`` (department → state; missing departments start empty) and returns department →
    state for every department in ``initial`` or touched by an event. Raises ``ProjectionError`` if the events
    are about more than one citizen.
    """
    states: dict[str, DepartmentState] = dict(initial or {})
    citizen: str | None = None
    for event in events:
        if citizen is None:
            citizen = event.citizen_id
        elif event.citizen_id != citizen:
            raise ProjectionError(f"fold() takes the events of one citizen, got {citizen} and {event.citizen_id}")
        department = event.payload.department
        current = states.get(department)
        states[department] = apply(current if current is not None else initial_state(department), event)
    return states


def fold_by_citizen(events: Iterable[AnyEvent]) -> dict[str, dict[str, DepartmentState]]:
    """Group ``events`` by citizen ID (keeping their order) and fold each group from empty states."""
    groups: defaultdict[str, list[AnyEvent]] = defaultdict(list)
    for event in events:
        groups[event.citizen_id].append(event)
    return {citizen: fold(group) for citizen, group in groups.items()}


def _expect(state: DepartmentState, cls: type[S]) -> S:
    # ``apply`` has checked the department already; this narrows the type for the handler (and guards a
    # handler registered for the wrong department).
    if not isinstance(state, cls):
        raise ProjectionError(f"expected a {cls.__name__}, got a {type(state).__name__}")
    return state


@functools.singledispatch
def handle_payload(payload: Payload, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    """The department state after ``payload`` (``event``'s): one handler per payload type, registered below; a
    type without one is a ``ProjectionError``."""
    raise ProjectionError(f"no projection handler for {type(payload).__name__} ({event.event_type})")


# ---------------------------------------------------------------------------------------------------------
# Public security
# ---------------------------------------------------------------------------------------------------------


def _close_hukou(hukou: Hukou, ended_on: date, ended_by: HukouEnding) -> tuple[HukouPeriod, ...]:
    """History with the current registration appended as closed, if one is open."""
    if hukou.status != "registered":
        # A moved-out or cancelled hukou was closed into the history when that happened.
        return hukou.history
    assert hukou.region_code is not None and hukou.urban is not None  # set whenever status is "registered"
    assert hukou.household_id is not None and hukou.registered_on is not None and hukou.reason is not None
    period = HukouPeriod(
        region_code=hukou.region_code,
        urban=hukou.urban,
        household_id=hukou.household_id,
        registered_on=hukou.registered_on,
        reason=hukou.reason,
        ended_on=ended_on,
        ended_by=ended_by,
    )
    return (*hukou.history, period)


def _settle(
    state: PublicSecurityState, payload: BirthRegistered | HukouRegistered, registered_on: date
) -> PublicSecurityState:
    """A new permanent registration; an open previous one goes to the history."""
    if isinstance(payload, HukouRegistered):
        reason, from_region, legacy = payload.reason, payload.from_region_code, payload.legacy_nature
    else:
        reason, from_region, legacy = "birth", None, None
    hukou = Hukou(
        status="registered",
        household_id=payload.household_id,
        household_type=payload.household_type,
        relationship=payload.relationship,
        region_code=payload.region_code,
        address=payload.address,
        urban=payload.urban,
        registered_on=registered_on,
        reason=reason,
        legacy_nature=legacy,
        from_region_code=from_region,
        history=_close_hukou(state.hukou, registered_on, "registered"),
    )
    # A living person settling again shows that an earlier cancellation for death was a mistake.
    return state.model_copy(update={"hukou": hukou, "deceased_on": None})


@handle_payload.register
def _birth_registered(payload: BirthRegistered, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    identity = ps.identity.model_copy(
        update={
            "name": payload.name,
            "sex": payload.sex,
            "birth_date": payload.birth_date,
            "ethnicity": payload.ethnicity,
        }
    )
    return _settle(ps, payload, payload.birth_date).model_copy(update={"identity": identity})


def _fill_identity(ps: PublicSecurityState, payload: CarriedIdentity) -> PublicSecurityState:
    """Identity a registration carries, taken only where public security has none yet: a birth registration or
    a correction is never overridden by what a later registration repeats (one source per field)."""
    identity = ps.identity
    missing = {
        name: value
        for name, value in (
            ("name", payload.name),
            ("sex", payload.sex),
            ("birth_date", payload.birth_date),
            ("ethnicity", payload.ethnicity),
        )
        if value is not None and getattr(identity, name) is None
    }
    return ps.model_copy(update={"identity": identity.model_copy(update=missing)}) if missing else ps


@handle_payload.register
def _hukou_registered(payload: HukouRegistered, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _fill_identity(_expect(state, PublicSecurityState), payload)
    return _settle(ps, payload, business_date(event.occurred_at))


@handle_payload.register
def _hukou_moved_out(payload: HukouMovedOut, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    on = business_date(event.occurred_at)
    hukou = ps.hukou.model_copy(
        update={
            "status": "moved_out",
            "moved_out_to": payload.to_region_code,
            "moved_out_on": on,
            "history": _close_hukou(ps.hukou, on, "moved_out"),
        }
    )
    return ps.model_copy(update={"hukou": hukou})


@handle_payload.register
def _hukou_cancelled(payload: HukouCancelled, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    on = business_date(event.occurred_at)
    hukou = ps.hukou.model_copy(
        update={
            "status": "cancelled",
            "cancelled_reason": payload.reason,
            "cancelled_on": on,
            "history": _close_hukou(ps.hukou, on, "cancelled"),
        }
    )
    # The cancellation's business date is public security's claim of the date of death; health keeps its own
    # claim (death.certified) and the view flags a disagreement instead of choosing.
    deceased_on = on if payload.reason == "death" else ps.deceased_on
    return ps.model_copy(update={"hukou": hukou, "deceased_on": deceased_on})


@handle_payload.register
def _number_changed(payload: NumberChanged, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    # The link itself is the alias projection's (projections.resident.aliases); no section changes.
    return _expect(state, PublicSecurityState)


@handle_payload.register
def _duplicate_merged(payload: DuplicateMerged, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    return _expect(state, PublicSecurityState)


@handle_payload.register
def _identity_corrected(payload: IdentityCorrected, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    changes = {
        field: value for field, value in (("name", payload.name), ("ethnicity", payload.ethnicity)) if value is not None
    }
    return ps.model_copy(update={"identity": ps.identity.model_copy(update=changes)})


def _end_residence(registration: ResidenceRegistration, ended_on: date) -> EndedResidence:
    return EndedResidence(
        address=registration.address,
        region_code=registration.region_code,
        urban=registration.urban,
        since=registration.since,
        basis=registration.basis,
        tenure=registration.tenure,
        ended_on=ended_on,
    )


@handle_payload.register
def _residence_registered(payload: ResidenceRegistered, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _fill_identity(_expect(state, PublicSecurityState), payload)
    history = ps.residence_history
    if ps.residence_registration is not None:
        history = (*history, _end_residence(ps.residence_registration, payload.since))
    registration = ResidenceRegistration(
        address=payload.address,
        region_code=payload.region_code,
        urban=payload.urban,
        since=payload.since,
        basis=payload.basis,
        tenure=payload.tenure,
    )
    return ps.model_copy(update={"residence_registration": registration, "residence_history": history})


@handle_payload.register
def _residence_ended(payload: ResidenceEnded, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    if ps.residence_registration is None:
        return ps  # nothing open to end
    ended = _end_residence(ps.residence_registration, payload.ended_on)
    return ps.model_copy(update={"residence_registration": None, "residence_history": (*ps.residence_history, ended)})


@handle_payload.register
def _permit_issued(payload: ResidencePermitIssued, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    permit = Permit(
        permit_no=payload.permit_no,
        region_code=payload.region_code,
        issued_on=payload.issued_on,
        valid_until=payload.valid_until,
        basis=payload.basis,
    )
    history = ps.permit_history
    if ps.permit is not None and ps.permit.permit_no != payload.permit_no:
        history = (*history, ps.permit)
    # Re-issuing the same number (a re-recorded issue) replaces the permit instead of filling the history.
    return ps.model_copy(update={"permit": permit, "permit_history": history})


@handle_payload.register
def _permit_renewed(payload: ResidencePermitRenewed, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    if ps.permit is None or ps.permit.permit_no != payload.permit_no:
        # A renewal of a permit we do not hold (issued before the backbone existed, or a clerical error) has
        # nothing to extend; the event stays in the archive for audit.
        return ps
    permit = ps.permit.model_copy(update={"valid_until": payload.valid_until, "renewals": ps.permit.renewals + 1})
    return ps.model_copy(update={"permit": permit})


@handle_payload.register
def _permit_revoked(payload: ResidencePermitRevoked, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ps = _expect(state, PublicSecurityState)
    if ps.permit is None or ps.permit.permit_no != payload.permit_no:
        return ps  # as for renewals: only the permit held can be revoked
    permit = ps.permit.model_copy(
        update={
            "revoked": True,
            "revoked_reason": payload.reason,
            "revoked_on": business_date(event.occurred_at),
        }
    )
    return ps.model_copy(update={"permit": permit})


# ---------------------------------------------------------------------------------------------------------
# Education
# ---------------------------------------------------------------------------------------------------------


def _school_event(
    kind: SchoolEventKind,
    school: Schooling | None,
    on: date,
    *,
    stage: Stage | None = None,
    qualification: str | None = None,
    reason: str | None = None,
) -> SchoolEvent:
    """A history entry about ``school`` (the current schooling, if any)."""
    return SchoolEvent(
        kind=kind,
        school_code=school.school_code if school else None,
        school_name=school.school_name if school else None,
        region_code=school.region_code if school else None,
        stage=stage or (school.stage if school else None),
        on=on,
        qualification=qualification,
        reason=reason,
    )


@handle_payload.register
def _student_enrolled(payload: StudentEnrolled, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ed = _expect(state, EducationState)
    current = Schooling(
        school_code=payload.school_code,
        school_name=payload.school_name,
        region_code=payload.region_code,
        stage=payload.stage,
        grade=payload.grade,
        since=payload.enrolled_on,
        migrant_child=payload.migrant_child,
        student_no=payload.student_no,
    )
    entry = _school_event("enrolled", current, payload.enrolled_on)
    return ed.model_copy(update={"current": current, "history": (*ed.history, entry)})


@handle_payload.register
def _student_transferred(payload: StudentTransferred, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ed = _expect(state, EducationState)
    entry = SchoolEvent(
        kind="transferred",
        school_code=payload.school_code,
        school_name=payload.school_name,
        region_code=payload.region_code,
        stage=ed.current.stage if ed.current else None,
        on=payload.transferred_on,
    )
    if ed.current is None:
        # No enrolment on record (stage unknown): keep the fact in the history only.
        return ed.model_copy(update={"history": (*ed.history, entry)})
    current = ed.current.model_copy(
        update={
            "school_code": payload.school_code,
            "school_name": payload.school_name,
            "region_code": payload.region_code,
            "since": payload.transferred_on,
        }
    )
    return ed.model_copy(update={"current": current, "history": (*ed.history, entry)})


@handle_payload.register
def _student_graduated(payload: StudentGraduated, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ed = _expect(state, EducationState)
    entry = _school_event(
        "graduated",
        ed.current,
        payload.graduated_on,
        stage=payload.stage,
        qualification=payload.qualification,
    )
    return ed.model_copy(update={"current": None, "history": (*ed.history, entry)})


@handle_payload.register
def _student_withdrawn(payload: StudentWithdrawn, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ed = _expect(state, EducationState)
    entry = _school_event("withdrawn", ed.current, payload.withdrawn_on, reason=payload.reason)
    return ed.model_copy(update={"current": None, "history": (*ed.history, entry)})


# ---------------------------------------------------------------------------------------------------------
# HR and social security
# ---------------------------------------------------------------------------------------------------------


@handle_payload.register
def _employment_registered(payload: EmploymentRegistered, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    record = EmploymentRecord(
        employer_code=payload.employer_code,
        employer_name=payload.employer_name,
        region_code=payload.region_code,
        started_on=payload.started_on,
        contract=payload.contract,
    )
    # One open employment per employer: a re-registration with the same employer replaces the record.
    others = tuple(e for e in ss.employers if e.employer_code != payload.employer_code)
    return ss.model_copy(update={"employers": (*others, record)})


@handle_payload.register
def _employment_ended(payload: EmploymentEnded, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    ending = [e for e in ss.employers if e.employer_code == payload.employer_code]
    if not ending:
        return ss  # no open employment with that employer to end
    record = ending[0]
    ended = EndedEmployment(
        employer_code=record.employer_code,
        employer_name=record.employer_name,
        region_code=record.region_code,
        started_on=record.started_on,
        contract=record.contract,
        ended_on=payload.ended_on,
        reason=payload.reason,
    )
    return ss.model_copy(
        update={
            "employers": tuple(e for e in ss.employers if e.employer_code != payload.employer_code),
            "employment_history": (*ss.employment_history, ended),
        }
    )


@handle_payload.register
def _unemployment_registered(
    payload: UnemploymentRegistered, state: DepartmentState, event: AnyEvent
) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    registration = Unemployment(region_code=payload.region_code, registered_on=payload.registered_on)
    return ss.model_copy(update={"unemployment": registration})


@handle_payload.register
def _unemployment_ended(payload: UnemploymentEnded, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    if ss.unemployment is None:
        return ss
    ended = EndedUnemployment(
        region_code=ss.unemployment.region_code,
        registered_on=ss.unemployment.registered_on,
        ended_on=payload.ended_on,
    )
    return ss.model_copy(update={"unemployment": None, "unemployment_history": (*ss.unemployment_history, ended)})


@handle_payload.register
def _insurance_enrolled(payload: InsuranceEnrolled, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    previous = ss.schemes.get(payload.scheme)
    scheme = SchemeState(
        status="active",
        region_code=payload.region_code,
        since=payload.started_on,
        employer_code=payload.employer_code,
    )
    if previous is not None:
        # Re-enrolling keeps the months already contributed: they count towards the same entitlement.
        scheme = scheme.model_copy(
            update={
                "months_by_region": previous.months_by_region,
                "paid_total": previous.paid_total,
                "first_period": previous.first_period,
                "last_period": previous.last_period,
                "unverified_carried_months": previous.unverified_carried_months,
            }
        )
    return ss.model_copy(update={"schemes": {**ss.schemes, payload.scheme: scheme}})


def _add_months(period: str, months: int) -> str:
    """The month ``months`` after ``period`` (``YYYY-MM``)."""
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@handle_payload.register
def _insurance_contributed(payload: InsuranceContributed, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    scheme = ss.schemes.get(payload.scheme)
    if scheme is None:
        # Contributions without an enrolment on record (enrolled before the backbone existed): the scheme is
        # evidently active, held where the contribution was recorded, since the first month paid.
        scheme = SchemeState(
            status="active",
            region_code=event.source.region_code,
            since=date(int(payload.period[:4]), int(payload.period[5:7]), 1),
        )
    # No de-duplication here: the projector applies each event_id exactly once (a unique key on the archive,
    # in the same transaction as the view), and two distinct events for the same period are two payments
    # (arrears, corrections) that the contributing department chose to record.
    region = scheme.region_code
    last = _add_months(payload.period, payload.months - 1)
    scheme = scheme.model_copy(
        update={
            "months_by_region": {
                **scheme.months_by_region,
                region: scheme.months_by_region.get(region, 0) + payload.months,
            },
            "paid_total": scheme.paid_total + payload.amount,
            # YYYY-MM strings order like the months they name.
            "first_period": min(payload.period, scheme.first_period or payload.period),
            "last_period": max(last, scheme.last_period or last),
        }
    )
    return ss.model_copy(update={"schemes": {**ss.schemes, payload.scheme: scheme}})


@handle_payload.register
def _insurance_transferred(payload: InsuranceTransferred, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    scheme = ss.schemes.get(payload.scheme)
    if scheme is None:
        # A record arriving from elsewhere with no history here: the scheme is now held in the new region,
        # with the months we know of (none — the cap below never invents months).
        scheme = SchemeState(
            status="active", region_code=payload.to_region_code, since=business_date(event.occurred_at)
        )
    held = scheme.months_by_region.get(payload.from_region_code, 0)
    # Never move more than the source region holds: a transfer recorded twice (two event_ids) must not count
    # its months twice. What a transfer claims beyond that is kept apart as unverified, not counted.
    moved = min(payload.months_carried, held)
    months = dict(scheme.months_by_region)
    if moved:
        months[payload.from_region_code] = held - moved
        months[payload.to_region_code] = months.get(payload.to_region_code, 0) + moved
        if not months[payload.from_region_code]:
            del months[payload.from_region_code]
    scheme = scheme.model_copy(
        update={
            "region_code": payload.to_region_code,
            "months_by_region": months,
            "unverified_carried_months": scheme.unverified_carried_months + payload.months_carried - moved,
        }
    )
    return ss.model_copy(update={"schemes": {**ss.schemes, payload.scheme: scheme}})


@handle_payload.register
def _insurance_stopped(payload: InsuranceStopped, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    scheme = ss.schemes.get(payload.scheme)
    if scheme is None:
        return ss  # nothing to stop
    scheme = scheme.model_copy(
        update={"status": "stopped", "stopped_on": payload.stopped_on, "stopped_reason": payload.reason}
    )
    return ss.model_copy(update={"schemes": {**ss.schemes, payload.scheme: scheme}})


@handle_payload.register
def _card_issued(payload: SocialSecurityCardIssued, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    return ss.model_copy(update={"card_no": payload.card_no, "card_issued_on": payload.issued_on})


@handle_payload.register
def _training_completed(payload: TrainingCompleted, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    ss = _expect(state, SocialSecurityState)
    training = Training(
        program=payload.program,
        completed_on=payload.completed_on,
        level=payload.level,
        certificate_no=payload.certificate_no,
    )
    return ss.model_copy(update={"trainings": (*ss.trainings, training)})


# ---------------------------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------------------------


@handle_payload.register
def _birth_certified(payload: BirthCertified, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    hs = _expect(state, HealthState)
    if payload.certificate_no in hs.births_certified:
        return hs  # the same certificate recorded again (a re-issue) is still one birth
    return hs.model_copy(update={"births_certified": (*hs.births_certified, payload.certificate_no)})


@handle_payload.register
def _death_certified(payload: DeathCertified, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    hs = _expect(state, HealthState)
    # A later certificate is a correction of the earlier one: the latest claim stands.
    death = DeathRecord(died_on=payload.died_on, certificate_no=payload.certificate_no, region_code=payload.region_code)
    return hs.model_copy(update={"death": death})


@handle_payload.register
def _health_record_opened(payload: HealthRecordOpened, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    hs = _expect(state, HealthState)
    return hs.model_copy(
        update={
            "record_no": payload.record_no,
            "clinic_code": payload.clinic_code,
            "record_opened_on": payload.opened_on,
        }
    )


@handle_payload.register
def _family_doctor_contracted(
    payload: FamilyDoctorContracted, state: DepartmentState, event: AnyEvent
) -> DepartmentState:
    hs = _expect(state, HealthState)
    doctor = FamilyDoctor(
        clinic_code=payload.clinic_code,
        team=payload.team,
        started_on=payload.started_on,
        ends_on=payload.ends_on,
    )
    return hs.model_copy(update={"family_doctor": doctor})


@handle_payload.register
def _vaccination_recorded(payload: VaccinationRecorded, state: DepartmentState, event: AnyEvent) -> DepartmentState:
    hs = _expect(state, HealthState)
    dose = Vaccination(
        vaccine_code=payload.vaccine_code,
        dose=payload.dose,
        administered_on=payload.administered_on,
        clinic_code=payload.clinic_code,
    )
    return hs.model_copy(
        update={"vaccinations": hs.vaccinations + 1, "vaccination_history": (*hs.vaccination_history, dose)}
    )
