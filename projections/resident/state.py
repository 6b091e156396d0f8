"""The stored state of one resident: one immutable state object per department.

"One source per data item" (ARCHITECTURE decision 2): each department's state is folded only from that
department's own events, so however Kafka interleaves the four department topics, the four states — and the
view rendered from them — come out the same.

The states hold **raw facts only**: dates as recorded, counters, histories. Anything that depends on the day
it is read (age, a permit's ``valid``/``expired``, months of continuous residence) is computed by
``projections.resident.render`` for an explicit ``as_of`` date, never stored.

Every model is a frozen Pydantic v2 model that forbids unknown fields. Sequences are tuples, so an unchanged
part of a state can be shared between the old and the new state without copying; mappings (``schemes``,
``months_by_region``) are plain dicts that ``apply`` always replaces and never mutates in place. The JSON form
(``state_to_json``) is what the store keeps; ``state_from_json(department, state_to_json(s)) == s`` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar, Final, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict

from events.education import Stage
from events.fields import DEPARTMENTS, Department, Sex
from events.public_security import (
    CancellationReason,
    HouseholdType,
    LegacyNature,
    Relationship,
    ResidenceBasis,
    SettlementReason,
    Tenure,
)
from events.social_security import Contract, Scheme

__all__ = [
    "DEPARTMENTS",
    "DeathRecord",
    "DepartmentState",
    "EducationState",
    "EmploymentRecord",
    "EndedEmployment",
    "EndedResidence",
    "EndedUnemployment",
    "FamilyDoctor",
    "HealthState",
    "Hukou",
    "HukouEnding",
    "HukouPeriod",
    "HukouStatus",
    "Identity",
    "Permit",
    "PublicSecurityState",
    "ResidenceRegistration",
    "SchemeState",
    "SchemeStatus",
    "SchoolEvent",
    "SchoolEventKind",
    "Schooling",
    "SocialSecurityState",
    "Training",
    "Unemployment",
    "Vaccination",
    "initial_state",
    "state_from_json",
    "state_to_json",
]


HukouStatus = Literal["registered", "moved_out", "cancelled", "none"]
SchemeStatus = Literal["active", "stopped"]
HukouEnding = Literal["moved_out", "cancelled", "registered"]
"""How a hukou period ended; ``registered`` means a new registration replaced it without a move-out."""
SchoolEventKind = Literal["enrolled", "transferred", "graduated", "withdrawn"]


class _State(BaseModel):
    # Not strict: ``state_from_json`` reads ISO date strings and decimal strings back from JSON.
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A shallow copy with ``update`` applied, as pydantic's, without its generic ``__copy__``.

        The fold calls this for every event; states are immutable, have neither extra fields nor private
        attributes, so a new instance around an updated copy of ``__dict__`` is the whole copy. The values in
        ``update`` are not validated (as with pydantic's ``model_copy``): handlers pass values of the field types.
        """
        if deep:
            return super().model_copy(update=update, deep=True)
        cls = type(self)
        fields = self.__dict__.copy()
        fields_set = self.__pydantic_fields_set__
        if update:
            fields.update(update)
            fields_set = fields_set | update.keys()
        new = cls.__new__(cls)
        _set = object.__setattr__
        _set(new, "__dict__", fields)
        _set(new, "__pydantic_fields_set__", fields_set)
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new


# ---------------------------------------------------------------------------------------------------------
# Public security
# ---------------------------------------------------------------------------------------------------------


class Identity(_State):
    """Name, sex, birth date and ethnicity as public security registered them.

    All may be ``None`` for a person whose birth was registered before the backbone existed; the view then
    falls back to what the citizen ID encodes for sex and birth date.
    """

    name: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    ethnicity: str | None = None


class HukouPeriod(_State):
    """A closed period of permanent hukou registration, kept for policies that ask about an earlier hukou."""

    region_code: str
    urban: bool
    household_id: str
    registered_on: date
    reason: SettlementReason
    ended_on: date
    ended_by: HukouEnding


class Hukou(_State):
    """The permanent hukou (户口): the current or last registration and its closed predecessors.

    After a move-out or cancellation the household fields keep describing the last registration, so the view
    can still say where the hukou was.
    """

    status: HukouStatus = "none"
    household_id: str | None = None
    household_type: HouseholdType | None = None
    relationship: Relationship | None = None
    region_code: str | None = None
    address: str | None = None
    urban: bool | None = None
    registered_on: date | None = None
    reason: SettlementReason | None = None
    legacy_nature: LegacyNature | None = None
    from_region_code: str | None = None
    moved_out_to: str | None = None
    moved_out_on: date | None = None
    cancelled_reason: CancellationReason | None = None
    cancelled_on: date | None = None
    history: tuple[HukouPeriod, ...] = ()


class ResidenceRegistration(_State):
    """A residence registration (居住登记) away from the hukou place."""

    address: str
    region_code: str
    urban: bool
    since: date
    basis: ResidenceBasis
    tenure: Tenure | None = None


class EndedResidence(ResidenceRegistration):
    """A residence registration that has ended (by ``residence.ended`` or by a newer registration)."""

    ended_on: date


class Permit(_State):
    """A residence permit (居住证) with its renewals and, if it happened, its revocation."""

    permit_no: str
    region_code: str
    issued_on: date
    valid_until: date
    basis: ResidenceBasis
    revoked: bool = False
    revoked_reason: str | None = None
    revoked_on: date | None = None
    renewals: int = 0


class PublicSecurityState(_State):
    """Everything public security (公安) says about one resident."""

    department: ClassVar[Department] = "public_security"

    identity: Identity = Identity()
    hukou: Hukou = Hukou()
    residence_registration: ResidenceRegistration | None = None
    residence_history: tuple[EndedResidence, ...] = ()
    permit: Permit | None = None
    permit_history: tuple[Permit, ...] = ()
    """Earlier permits, replaced by a newer ``residence_permit.issued``."""
    deceased_on: date | None = None
    """Set by ``hukou.cancelled`` with reason ``death``: that event's business date."""


# ---------------------------------------------------------------------------------------------------------
# Education
# ---------------------------------------------------------------------------------------------------------


class Schooling(_State):
    """The school a student currently attends."""

    school_code: str
    school_name: str
    region_code: str
    stage: Stage
    grade: int | None = None
    since: date
    """Enrolment date, or the date of the latest transfer."""
    migrant_child: bool
    student_no: str


class SchoolEvent(_State):
    """One step of a school career. School fields are those of the school concerned, when known."""

    kind: SchoolEventKind
    school_code: str | None = None
    school_name: str | None = None
    region_code: str | None = None
    stage: Stage | None = None
    on: date
    qualification: str | None = None
    reason: str | None = None


class EducationState(_State):
    """Everything education (教育) says about one resident."""

    department: ClassVar[Department] = "education"

    current: Schooling | None = None
    history: tuple[SchoolEvent, ...] = ()


# ---------------------------------------------------------------------------------------------------------
# HR and social security
# ---------------------------------------------------------------------------------------------------------


class EmploymentRecord(_State):
    """A registered employment (就业登记) that is still open."""

    employer_code: str
    employer_name: str
    region_code: str
    started_on: date
    contract: Contract


class EndedEmployment(EmploymentRecord):
    """An employment that has ended."""

    ended_on: date
    reason: str | None = None


class Unemployment(_State):
    """An open unemployment registration (失业登记)."""

    region_code: str
    registered_on: date


class EndedUnemployment(Unemployment):
    """A closed unemployment registration."""

    ended_on: date


class SchemeState(_State):
    """One social-insurance scheme: where it is held now and the months contributed, per region.

    ``months_by_region`` counts contribution months by the region that holds them; a transfer (转移接续) moves
    months between regions, so the sum is the person's total and never counts a month twice.
    """

    status: SchemeStatus
    region_code: str
    since: date
    employer_code: str | None = None
    months_by_region: dict[str, int] = {}
    stopped_on: date | None = None
    stopped_reason: str | None = None
    paid_total: Decimal = Decimal(0)
    """Sum of the contributed amounts in CNY (informative; eligibility counts months)."""
    first_period: str | None = None
    """Earliest month (``YYYY-MM``) covered by a contribution."""
    last_period: str | None = None
    """Latest month (``YYYY-MM``) covered by a contribution."""
    unverified_carried_months: int = 0
    """Months transfers claimed to carry beyond what the source region held here (contributions made before
    the backbone's records began, or a transfer recorded twice). Kept apart, never counted in the months."""


class Training(_State):
    """A completed vocational training programme."""

    program: str
    completed_on: date
    level: str | None = None
    certificate_no: str | None = None


class SocialSecurityState(_State):
    """Everything HR and social security (人社) says about one resident."""

    department: ClassVar[Department] = "social_security"

    employers: tuple[EmploymentRecord, ...] = ()
    employment_history: tuple[EndedEmployment, ...] = ()
    unemployment: Unemployment | None = None
    unemployment_history: tuple[EndedUnemployment, ...] = ()
    schemes: dict[Scheme, SchemeState] = {}
    card_no: str | None = None
    card_issued_on: date | None = None
    trainings: tuple[Training, ...] = ()


# ---------------------------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------------------------


class FamilyDoctor(_State):
    """The latest family-doctor contract (家庭医生签约)."""

    clinic_code: str
    team: str | None = None
    started_on: date
    ends_on: date


class Vaccination(_State):
    """One administered vaccine dose."""

    vaccine_code: str
    dose: int
    administered_on: date
    clinic_code: str


class DeathRecord(_State):
    """A medically certified death (死亡医学证明)."""

    died_on: date
    certificate_no: str
    region_code: str


class HealthState(_State):
    """Everything health (卫健) says about one resident."""

    department: ClassVar[Department] = "health"

    record_no: str | None = None
    clinic_code: str | None = None
    record_opened_on: date | None = None
    family_doctor: FamilyDoctor | None = None
    vaccinations: int = 0
    vaccination_history: tuple[Vaccination, ...] = ()
    death: DeathRecord | None = None
    births_certified: tuple[str, ...] = ()
    """Birth-certificate numbers of the children this person (the mother) gave birth to."""


DepartmentState: TypeAlias = PublicSecurityState | EducationState | SocialSecurityState | HealthState
"""The state one department keeps about one resident."""

_STATE_CLASSES: Final[dict[str, type[DepartmentState]]] = {
    "public_security": PublicSecurityState,
    "education": EducationState,
    "social_security": SocialSecurityState,
    "health": HealthState,
}

# The empty states are immutable, so one instance of each serves every new resident.
_INITIAL: Final[dict[str, DepartmentState]] = {name: cls() for name, cls in _STATE_CLASSES.items()}


def _state_class(department: str) -> type[DepartmentState]:
    try:
        return _STATE_CLASSES[department]
    except KeyError:
        raise ValueError(f"unknown department {department!r}; expected one of {', '.join(DEPARTMENTS)}") from None


def initial_state(department: str) -> DepartmentState:
    """The state of a resident a department has never spoken about.

    Raises ``ValueError`` for a name that is not one of ``DEPARTMENTS``.
    """
    _state_class(department)
    return _INITIAL[department]


def state_to_json(state: DepartmentState) -> dict[str, Any]:
    """The JSON-ready form of a department state (dates as ``YYYY-MM-DD``, money as a decimal string)."""
    return state.model_dump(mode="json")


def state_from_json(department: str, data: Any) -> DepartmentState:
    """Read back what ``state_to_json`` produced for ``department``; the round trip is exact.

    Raises ``ValueError`` for an unknown department and ``pydantic.ValidationError`` for malformed data.
    """
    return _state_class(department).model_validate(data)


def state_to_json_text(state: DepartmentState) -> str:
    """``state_to_json`` as JSON text in one step (pydantic's serializer; the store's hot path)."""
    return state.model_dump_json()


def state_from_json_text(department: str, text: str | bytes) -> DepartmentState:
    """Read back JSON text of a department state (from ``state_to_json_text`` or the database's jsonb)."""
    return _state_class(department).model_validate_json(text)
