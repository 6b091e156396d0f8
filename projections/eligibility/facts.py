"""Facts about one resident on one date, each with the events that established it.

``derive_facts`` folds the citizen's archived events that had happened by ``as_of`` with the resident
projection's own pure ``apply`` (so a fact is exactly what the view would say), and watches, event by event,
which part of the state each event changed: that is the provenance every decision shows (``event_ids``).
"In the city" means a region code under the policy's prefixes (``CityScope``).

Pure: no I/O, no clock. Everything time-relative (ages, months, validity) is computed for ``as_of``, with
``projections.resident.dates``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

from events.citizen_id import division_name
from events.education import Stage
from events.envelope import Event, Payload
from events.health import DeathCertified
from events.public_security import (
    BirthRegistered,
    CancellationReason,
    HouseholdType,
    HukouCancelled,
    HukouMovedOut,
    HukouRegistered,
    LegacyNature,
    Relationship,
    ResidenceEnded,
    ResidencePermitIssued,
    ResidenceRegistered,
)
from events.social_security import EmploymentEnded, EmploymentRegistered
from projections.resident.apply import apply
from projections.resident.dates import business_date, completed_years, whole_months
from projections.resident.render import permit_status
from projections.resident.state import (
    DepartmentState,
    EducationState,
    EmploymentRecord,
    HealthState,
    Permit,
    PublicSecurityState,
    ResidenceRegistration,
    SchemeState,
    SocialSecurityState,
    initial_state,
)

__all__ = [
    "STAGE_RANK",
    "AgeFact",
    "CertificatesFact",
    "CityScope",
    "EducationFact",
    "EmploymentFact",
    "Facts",
    "HukouFact",
    "InsuranceFact",
    "LifeFact",
    "OriginFact",
    "ParentFact",
    "ParentInput",
    "PermitFact",
    "Relation",
    "RelativeFact",
    "RelativeInput",
    "ResidenceFact",
    "SchemeFact",
    "derive_facts",
    "events_until",
    "household_relation",
    "region_label",
]

AnyEvent = Event[Payload]

STAGE_RANK: Final[dict[Stage, int]] = {
    "preschool": 0,
    "primary": 1,
    "junior_secondary": 2,
    "senior_secondary": 3,
    "vocational": 4,
    "higher": 5,
}
"""Order of the stages for "highest stage graduated": vocational (中专/高职) ranks above general senior
secondary, higher education above both (the order the Chengdu points table and the talent rules assume)."""


@dataclass(frozen=True, slots=True)
class CityScope:
    """The city a policy speaks of: region codes under ``prefixes`` are "in the city"."""

    name: str
    prefixes: tuple[str, ...]

    def contains(self, region_code: str | None) -> bool:
        return region_code is not None and region_code.startswith(self.prefixes)


def region_label(code: str | None) -> str | None:
    """``"510107 四川省武侯区"`` for a region code (the code alone if GB/T 2260 does not know it)."""
    if code is None:
        return None
    name = division_name(code)
    return f"{code} {name}" if name else code


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _ids(*groups: Iterable[str]) -> tuple[str, ...]:
    """Event IDs in first-seen order, without duplicates."""
    seen: dict[str, None] = {}
    for group in groups:
        for event_id in group:
            seen.setdefault(event_id, None)
    return tuple(seen)


# ---------------------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LifeFact:
    """Alive on ``as_of``: no date of death on or before it (public security's, else health's)."""

    alive: bool
    deceased_on: date | None
    event_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"alive": self.alive, "deceased_on": _iso(self.deceased_on), "event_ids": list(self.event_ids)}


@dataclass(frozen=True, slots=True)
class AgeFact:
    """Age in completed years on ``as_of`` (the age reached, for someone who died before)."""

    birth_date: date | None
    age: int | None
    source: Literal["birth.registered", "citizen_id"]
    event_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "birth_date": _iso(self.birth_date),
            "age": self.age,
            "source": self.source,
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class HukouFact:
    """The permanent hukou on ``as_of``."""

    status: Literal["registered", "moved_out", "cancelled", "none"]
    region_code: str | None
    urban: bool | None
    registered_on: date | None
    in_city: bool
    """Registered, in a region of the city."""
    event_ids: tuple[str, ...] = ()
    household_id: str | None = None
    household_type: HouseholdType | None = None
    relationship: Relationship | None = None
    """To the head of the household."""
    address: str | None = field(default=None, repr=False)
    """Compared for co-residence, never shown in an answer."""
    legacy_nature: LegacyNature | None = None
    """The nature before unification (a blue-seal hukou, 蓝印户口), where the registration recorded it."""
    cancelled_reason: CancellationReason | None = None
    cancelled_on: date | None = None

    @property
    def urban_in_city(self) -> bool:
        return self.in_city and bool(self.urban)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "region_code": self.region_code,
            "region": region_label(self.region_code),
            "urban": self.urban,
            "registered_on": _iso(self.registered_on),
            "in_city": self.in_city,
        }
        if self.household_type is not None:
            out["household_type"] = self.household_type
            out["relationship"] = self.relationship
        if self.legacy_nature is not None:
            out["legacy_nature"] = self.legacy_nature
        if self.status == "cancelled":
            out["cancelled_reason"] = self.cancelled_reason
            out["cancelled_on"] = _iso(self.cancelled_on)
        out["event_ids"] = list(self.event_ids)
        return out


@dataclass(frozen=True, slots=True)
class OriginFact:
    """Whether the person comes from the city (生源): the ID's division code, or an earlier hukou there."""

    id_division: str
    id_division_in_city: bool
    earlier_hukou_regions: tuple[str, ...]
    """Region codes of closed hukou periods in the city."""
    event_ids: tuple[str, ...] = ()
    rural: bool | None = None
    """A rural hukou on record (农村籍): a period or the current hukou at a rural address, or recorded as agricultural
    before unification; ``None`` with no hukou on record at all."""

    @property
    def from_city(self) -> bool:
        return self.id_division_in_city or bool(self.earlier_hukou_regions)

    def to_json(self) -> dict[str, Any]:
        return {
            "from_city": self.from_city,
            "id_division": region_label(self.id_division),
            "id_division_in_city": self.id_division_in_city,
            "earlier_hukou_in_city": [region_label(c) for c in self.earlier_hukou_regions],
            "rural": self.rural,
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class ResidenceFact:
    """The residence registration (居住登记) in force on ``as_of``, and how long the person has lived in the city.

    ``months_at_address`` counts whole months at this registration; ``continuous_months`` whole months since
    the start of the unbroken run of registrations in the city that ends with it (a move within the city does
    not break the run; a gap or a registration elsewhere does). Both are 0 when the registration is not in
    the city.
    """

    registered: bool
    region_code: str | None = None
    urban: bool | None = None
    since: date | None = None
    basis: str | None = None
    tenure: str | None = None
    in_city: bool = False
    months_at_address: int = 0
    continuous_since: date | None = None
    continuous_months: int = 0
    event_ids: tuple[str, ...] = ()
    address: str | None = field(default=None, repr=False)
    """Compared for co-residence, never shown in an answer."""

    def to_json(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "region_code": self.region_code,
            "region": region_label(self.region_code),
            "in_city": self.in_city,
            "urban": self.urban,
            "since": _iso(self.since),
            "basis": self.basis,
            "tenure": self.tenure,
            "months_at_address": self.months_at_address,
            "continuous_since": _iso(self.continuous_since),
            "continuous_months": self.continuous_months,
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class PermitFact:
    """The residence permit (居住证) that counts on ``as_of``: the first valid one (current, then earlier),
    else the current one, to explain why none is valid."""

    held: bool
    permit_no: str | None = None
    region_code: str | None = None
    status: str | None = None
    issued_on: date | None = None
    valid_until: date | None = None
    in_city: bool = False
    event_ids: tuple[str, ...] = ()

    @property
    def valid_in_city(self) -> bool:
        return self.in_city and self.status == "valid"

    def to_json(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "permit_no": self.permit_no,
            "region_code": self.region_code,
            "region": region_label(self.region_code),
            "in_city": self.in_city,
            "status": self.status,
            "valid_in_city": self.valid_in_city,
            "issued_on": _iso(self.issued_on),
            "valid_until": _iso(self.valid_until),
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class Job:
    employer_code: str
    employer_name: str
    region_code: str
    started_on: date
    months: int
    in_city: bool
    event_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "employer_code": self.employer_code,
            "employer_name": self.employer_name,
            "region_code": self.region_code,
            "region": region_label(self.region_code),
            "in_city": self.in_city,
            "started_on": self.started_on.isoformat(),
            "months": self.months,
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class EmploymentFact:
    """Registered employments in force on ``as_of``; ``months_in_city`` = the longest one in the city."""

    jobs: tuple[Job, ...] = ()

    @property
    def employed_in_city(self) -> bool:
        return any(j.in_city for j in self.jobs)

    @property
    def months_in_city(self) -> int:
        return max((j.months for j in self.jobs if j.in_city), default=0)

    @property
    def event_ids(self) -> tuple[str, ...]:
        return _ids(*(j.event_ids for j in self.jobs))

    def to_json(self) -> dict[str, Any]:
        return {
            "employed_in_city": self.employed_in_city,
            "months_in_city": self.months_in_city,
            "jobs": [j.to_json() for j in self.jobs],
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class SchemeFact:
    """One social-insurance scheme on ``as_of``: active or not, where it is held, months paid in the city."""

    scheme: str
    active: bool
    region_code: str
    in_city: bool
    months_in_city: int
    months_total: int
    since: date
    event_ids: tuple[str, ...]

    @property
    def active_in_city(self) -> bool:
        return self.active and self.in_city

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "active": self.active,
            "region_code": self.region_code,
            "region": region_label(self.region_code),
            "active_in_city": self.active_in_city,
            "months_in_city": self.months_in_city,
            "months_total": self.months_total,
            "since": self.since.isoformat(),
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True, slots=True)
class InsuranceFact:
    """Every scheme the person has been enrolled in or contributed to by ``as_of``."""

    schemes: tuple[SchemeFact, ...] = ()

    def get(self, scheme: str) -> SchemeFact | None:
        return next((s for s in self.schemes if s.scheme == scheme), None)

    def active_in_city(self, schemes: Iterable[str]) -> tuple[SchemeFact, ...]:
        wanted = set(schemes)
        return tuple(s for s in self.schemes if s.scheme in wanted and s.active_in_city)

    def months_in_city(self, schemes: Iterable[str]) -> int:
        """The most months paid in the city into any one of ``schemes`` (months of different schemes are the
        same months of life, so they are never added up)."""
        wanted = set(schemes)
        return max((s.months_in_city for s in self.schemes if s.scheme in wanted), default=0)

    @property
    def event_ids(self) -> tuple[str, ...]:
        return _ids(*(s.event_ids for s in self.schemes))

    def to_json(self, schemes: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = set(schemes) if schemes is not None else None
        chosen = [s for s in self.schemes if wanted is None or s.scheme in wanted]
        return {
            "schemes": [s.to_json() for s in chosen],
            "event_ids": list(_ids(*(s.event_ids for s in chosen))),
        }


@dataclass(frozen=True, slots=True)
class Graduation:
    stage: Stage
    graduated_on: date
    qualification: str | None
    event_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "graduated_on": self.graduated_on.isoformat(),
            "qualification": self.qualification,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class EducationFact:
    """Graduations (``student.graduated``) on or before ``as_of``, and the schooling in progress then.

    ``school_months_in_city`` counts whole months since the start of the unbroken run of schooling in the city
    that ends with the school attended on ``as_of`` (a transfer, or a new stage begun within a summer's break,
    keeps it unbroken); 0 when the student is not at a school in the city."""

    graduations: tuple[Graduation, ...] = ()
    enrolled_stage: Stage | None = None
    enrolled_region: str | None = None
    enrolled_in_city: bool = False
    schooling_since: date | None = None
    school_months_in_city: int = 0
    schooling_event_ids: tuple[str, ...] = ()

    @property
    def highest(self) -> Graduation | None:
        return max(self.graduations, key=lambda g: (STAGE_RANK[g.stage], g.graduated_on), default=None)

    def at_stages(self, stages: Iterable[str]) -> tuple[Graduation, ...]:
        wanted = set(stages)
        return tuple(g for g in self.graduations if g.stage in wanted)

    @property
    def event_ids(self) -> tuple[str, ...]:
        return _ids((g.event_id for g in self.graduations), self.schooling_event_ids)

    def to_json(self) -> dict[str, Any]:
        highest = self.highest
        out: dict[str, Any] = {
            "highest_stage": highest.stage if highest else None,
            "graduations": [g.to_json() for g in self.graduations],
        }
        if self.enrolled_stage is not None:
            out["enrolled"] = {
                "stage": self.enrolled_stage,
                "region": region_label(self.enrolled_region),
                "in_city": self.enrolled_in_city,
                "schooling_since": _iso(self.schooling_since),
                "school_months_in_city": self.school_months_in_city,
            }
        out["event_ids"] = list(self.event_ids)
        return out


@dataclass(frozen=True, slots=True)
class Certificate:
    program: str
    certificate_no: str
    level: str | None
    completed_on: date
    event_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "certificate_no": self.certificate_no,
            "level": self.level,
            "completed_on": self.completed_on.isoformat(),
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class CertificatesFact:
    """Skill certificates: completed trainings (``training.completed``) that carry a certificate number."""

    certificates: tuple[Certificate, ...] = ()

    @property
    def event_ids(self) -> tuple[str, ...]:
        return _ids(c.event_id for c in self.certificates)

    def to_json(self) -> dict[str, Any]:
        return {"certificates": [c.to_json() for c in self.certificates], "event_ids": list(self.event_ids)}


@dataclass(frozen=True, slots=True)
class ParentInput:
    """What the caller knows of a parent: the link (and the events that state it) and the parent's events."""

    role: Literal["mother", "father"]
    citizen_id: str
    link_event_ids: tuple[str, ...]
    events: Sequence[AnyEvent]
    aliases: tuple[str, ...] = ()  # the parent's other numbers (CONTRACT §12), whose events are theirs too


@dataclass(frozen=True, slots=True)
class ParentFact:
    """A parent and the facts of theirs that the child's rules use (the permit)."""

    role: Literal["mother", "father"]
    citizen_id: str
    permit: PermitFact
    alive: bool
    link_event_ids: tuple[str, ...]
    residence: ResidenceFact = ResidenceFact(registered=False)

    @property
    def event_ids(self) -> tuple[str, ...]:
        return _ids(self.link_event_ids, self.permit.event_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "citizen_id": self.citizen_id,
            "alive": self.alive,
            "permit": self.permit.to_json(),
            "lives_in_city": self.residence.in_city,
            "link_event_ids": list(self.link_event_ids),
            "event_ids": list(self.event_ids),
        }


Relation = Literal["spouse", "child", "parent"]
"""What a relative is to the resident, in the words of the family routes (配偶、子女、父母)."""


@dataclass(frozen=True, slots=True)
class RelativeInput:
    """A relative the register links to the resident, as the caller found them, and the relative's events.

    ``basis`` says how: ``birth`` (a birth registration or certificate names the parent: the link holds for
    good) or ``household`` (both are members of one household, their relations to its head giving
    ``relation``: ``derive_facts`` keeps the relative only if both hukou put them in that household on
    ``as_of``)."""

    relation: Relation
    citizen_id: str
    basis: Literal["birth", "household"]
    link_event_ids: tuple[str, ...]
    events: Sequence[AnyEvent]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelativeFact:
    """A relative on ``as_of`` with their own facts (without relatives of theirs), for the family routes."""

    relation: Relation
    citizen_id: str
    basis: Literal["birth", "household"]
    link_event_ids: tuple[str, ...]
    facts: Facts

    def to_json(self) -> dict[str, Any]:
        """Who the relative is and how the register links them; what decided about them is said in the reasons
        (the relative's own sections are theirs: a consumer reading the applicant's eligibility does not get them)."""
        return {
            "relation": self.relation,
            "citizen_id": self.citizen_id,
            "basis": self.basis,
            "alive": self.facts.life.alive,
            "hukou_in_city": self.facts.hukou.in_city,
            "link_event_ids": list(self.link_event_ids),
        }


_HOUSEHOLD_RELATIONS: Final[dict[tuple[Relationship | None, Relationship | None], Relation]] = {
    ("head", "spouse"): "spouse",
    ("spouse", "head"): "spouse",
    ("head", "child"): "child",
    ("spouse", "child"): "child",
    ("child", "head"): "parent",
    ("child", "spouse"): "parent",
    ("head", "parent"): "parent",
    ("parent", "head"): "child",
}

FAMILY_RELATIONSHIPS: Final[tuple[Relationship, ...]] = tuple(
    sorted({r for pair in _HOUSEHOLD_RELATIONS for r in pair if r is not None})
)
"""The relationships to a household's head from which ``household_relation`` can tell a relation."""


def household_relation(mine: Relationship | None, theirs: Relationship | None) -> Relation | None:
    """What a fellow member of one's household is to oneself, from both relations to its head: the spouse, a
    child or a parent of the head, seen from the head or the head's spouse (``None`` for the rest)."""
    return _HOUSEHOLD_RELATIONS.get((mine, theirs))


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the eligibility rules read about one resident on ``as_of``, for one city."""

    citizen_id: str
    as_of: date
    scope: CityScope
    life: LifeFact
    age: AgeFact
    hukou: HukouFact
    origin: OriginFact
    residence: ResidenceFact
    permit: PermitFact
    employment: EmploymentFact
    insurance: InsuranceFact
    education: EducationFact
    certificates: CertificatesFact
    parents: tuple[ParentFact, ...] = ()
    events_used: int = 0
    """How many of the citizen's events had happened by ``as_of``."""
    relatives: tuple[RelativeFact, ...] = ()
    """Spouse, children and parents the register links, for the family routes (only when the caller gave them)."""

    @property
    def home(self) -> tuple[str, str] | None:
        """Where the person lives on ``as_of`` (region code, address): the residence registration in force, else
        the registered hukou (a settled resident needs no residence registration at home)."""
        if self.residence.registered and self.residence.region_code and self.residence.address:
            return self.residence.region_code, " ".join(self.residence.address.split())
        hukou = self.hukou
        if hukou.status == "registered" and hukou.region_code and hukou.address:
            return hukou.region_code, " ".join(hukou.address.split())
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "life": self.life.to_json(),
            "age": self.age.to_json(),
            "hukou": self.hukou.to_json(),
            "origin": self.origin.to_json(),
            "residence": self.residence.to_json(),
            "permit": self.permit.to_json(),
            "employment": self.employment.to_json(),
            "insurance": self.insurance.to_json(),
            "education": self.education.to_json(),
            "certificates": self.certificates.to_json(),
            "parents": [p.to_json() for p in self.parents],
            "relatives": [r.to_json() for r in self.relatives],
        }


# ---------------------------------------------------------------------------------------------------------
# Provenance: which events made which part of the state
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Provenance:
    """Event IDs behind each part of the department states, kept in step with the fold."""

    identity: list[str] = field(default_factory=list)
    hukou: list[str] = field(default_factory=list)
    """The current (or last) hukou registration and what closed it."""
    hukou_history: list[list[str]] = field(default_factory=list)
    """Parallel to ``Hukou.history``."""
    ps_death: list[str] = field(default_factory=list)
    health_death: list[str] = field(default_factory=list)
    residence: list[str] = field(default_factory=list)
    residence_history: list[list[str]] = field(default_factory=list)
    """Parallel to ``PublicSecurityState.residence_history``."""
    permit: list[str] = field(default_factory=list)
    permit_history: list[list[str]] = field(default_factory=list)
    """Parallel to ``PublicSecurityState.permit_history``."""
    education_history: list[str] = field(default_factory=list)
    """Parallel to ``EducationState.history`` (every education event adds exactly one entry)."""
    employers: dict[str, list[str]] = field(default_factory=dict)
    employment_history: list[list[str]] = field(default_factory=list)
    """Parallel to ``SocialSecurityState.employment_history``."""
    schemes: dict[str, list[str]] = field(default_factory=dict)
    trainings: list[str] = field(default_factory=list)
    """Parallel to ``SocialSecurityState.trainings``."""

    def observe(self, before: DepartmentState, after: DepartmentState, event: AnyEvent) -> None:
        if after is before or after == before:
            return  # a lenient no-op (a renewal of a permit not held, ...): it established nothing
        eid = str(event.event_id)
        if isinstance(before, PublicSecurityState) and isinstance(after, PublicSecurityState):
            self._public_security(before, after, event, eid)
        elif isinstance(before, EducationState) and isinstance(after, EducationState):
            self.education_history.extend([eid] * (len(after.history) - len(before.history)))
        elif isinstance(before, SocialSecurityState) and isinstance(after, SocialSecurityState):
            self._social_security(before, after, event, eid)
        elif isinstance(after, HealthState) and isinstance(event.payload, DeathCertified):
            self.health_death = [eid]

    def _public_security(
        self, before: PublicSecurityState, after: PublicSecurityState, event: AnyEvent, eid: str
    ) -> None:
        payload = event.payload
        if after.identity != before.identity:
            self.identity.append(eid)
        if after.hukou != before.hukou:
            if len(after.hukou.history) > len(before.hukou.history):
                closing = [] if isinstance(payload, BirthRegistered | HukouRegistered) else [eid]
                self.hukou_history.append([*self.hukou, *closing])
            if isinstance(payload, BirthRegistered | HukouRegistered):
                self.hukou = [eid]
            elif isinstance(payload, HukouMovedOut | HukouCancelled):
                self.hukou = [*self.hukou, eid]
        if after.deceased_on != before.deceased_on:
            self.ps_death = [eid] if after.deceased_on is not None else []
        if after.residence_registration != before.residence_registration or len(after.residence_history) != len(
            before.residence_history
        ):
            if len(after.residence_history) > len(before.residence_history):
                closing = [eid] if isinstance(payload, ResidenceEnded) else []
                self.residence_history.append([*self.residence, *closing])
            self.residence = [eid] if isinstance(payload, ResidenceRegistered) else []
        if after.permit != before.permit or len(after.permit_history) != len(before.permit_history):
            if len(after.permit_history) > len(before.permit_history):
                self.permit_history.append(list(self.permit))
            if isinstance(payload, ResidencePermitIssued):
                self.permit = [eid]
            else:
                self.permit = [*self.permit, eid]

    def _social_security(
        self, before: SocialSecurityState, after: SocialSecurityState, event: AnyEvent, eid: str
    ) -> None:
        payload = event.payload
        if isinstance(payload, EmploymentRegistered):
            self.employers[payload.employer_code] = [eid]
        elif isinstance(payload, EmploymentEnded) and len(after.employment_history) > len(before.employment_history):
            self.employment_history.append([*self.employers.pop(payload.employer_code, []), eid])
        for scheme, state in after.schemes.items():
            if before.schemes.get(scheme) != state:
                self.schemes.setdefault(scheme, []).append(eid)
        self.trainings.extend([eid] * (len(after.trainings) - len(before.trainings)))


# ---------------------------------------------------------------------------------------------------------
# Deriving the facts
# ---------------------------------------------------------------------------------------------------------


def events_until(events: Iterable[AnyEvent], as_of: date) -> list[AnyEvent]:
    """The events that had happened by the end of ``as_of`` (business date in China), order kept — the same
    cut as ``services.residents.bitemporal`` uses for an ``as_of`` view."""
    return [e for e in events if business_date(e.occurred_at) <= as_of]


def _fold(events: Iterable[AnyEvent]) -> tuple[dict[str, DepartmentState], _Provenance]:
    states: dict[str, DepartmentState] = {}
    provenance = _Provenance()
    for event in events:
        department = event.payload.department
        before = states.get(department) or initial_state(department)
        after = apply(before, event)
        provenance.observe(before, after, event)
        states[department] = after
    return states, provenance


def _state(states: Mapping[str, DepartmentState], department: str) -> DepartmentState:
    return states.get(department) or initial_state(department)


def derive_facts(
    citizen_id: str,
    events: Iterable[AnyEvent],
    as_of: date,
    scope: CityScope,
    parents: Iterable[ParentInput] = (),
    aliases: Collection[str] = (),
    relatives: Iterable[RelativeInput] = (),
) -> Facts:
    """The facts of ``citizen_id`` on ``as_of`` for the city ``scope``, from their events (any order across
    departments, each department's in log order); events of other citizens are ignored.

    ``aliases``: the person's other numbers (CONTRACT §12), whose events are theirs too — then ``events`` come in
    the person's order (``projections.resident.aliases.person_order``). ``parents`` carries the parents' links
    and events, for the rules that look at a parent's permit; ``relatives`` the spouse, children and parents
    the register links, for the family routes.
    """
    mine = {citizen_id, *aliases}
    chosen = events_until((e for e in events if e.citizen_id in mine), as_of)
    states, provenance = _fold(chosen)
    ps = _state(states, "public_security")
    ed = _state(states, "education")
    ss = _state(states, "social_security")
    hs = _state(states, "health")
    assert isinstance(ps, PublicSecurityState) and isinstance(ed, EducationState)
    assert isinstance(ss, SocialSecurityState) and isinstance(hs, HealthState)
    life = _life(ps, hs, provenance, as_of)
    hukou = _hukou(ps, provenance, scope)
    return Facts(
        citizen_id=citizen_id,
        as_of=as_of,
        scope=scope,
        life=life,
        age=_age(citizen_id, ps, provenance, life, as_of),
        hukou=hukou,
        origin=_origin(citizen_id, ps, provenance, scope),
        residence=_residence(ps, provenance, scope, as_of),
        permit=_permit(ps, provenance, scope, as_of),
        employment=_employment(ss, provenance, scope, as_of),
        insurance=_insurance(ss, provenance, scope, as_of),
        education=_education(ed, provenance, as_of, scope),
        certificates=_certificates(ss, provenance, as_of),
        parents=tuple(_parent(p, as_of, scope) for p in parents),
        events_used=len(chosen),
        relatives=_relatives(hukou, relatives, as_of, scope),
    )


def _relatives(
    hukou: HukouFact, relatives: Iterable[RelativeInput], as_of: date, scope: CityScope
) -> tuple[RelativeFact, ...]:
    out: dict[tuple[str, str], RelativeFact] = {}
    for relative in relatives:
        facts = derive_facts(relative.citizen_id, relative.events, as_of, scope, aliases=relative.aliases)
        if facts.events_used == 0:
            continue  # nothing of theirs had happened by as_of
        links = relative.link_event_ids
        if relative.basis == "household":
            theirs = facts.hukou
            together = (
                hukou.status == theirs.status == "registered"
                and hukou.household_id is not None
                and hukou.household_id == theirs.household_id
            )
            if not together or household_relation(hukou.relationship, theirs.relationship) != relative.relation:
                continue  # not (or not so) in one household on as_of
            links = _ids(links, hukou.event_ids, theirs.event_ids)
        key = (relative.relation, relative.citizen_id)
        if key not in out:
            out[key] = RelativeFact(relative.relation, relative.citizen_id, relative.basis, links, facts)
    return tuple(out.values())


def _parent(parent: ParentInput, as_of: date, scope: CityScope) -> ParentFact:
    theirs = {parent.citizen_id, *parent.aliases}
    chosen = events_until((e for e in parent.events if e.citizen_id in theirs), as_of)
    states, provenance = _fold(chosen)
    ps = _state(states, "public_security")
    hs = _state(states, "health")
    assert isinstance(ps, PublicSecurityState) and isinstance(hs, HealthState)
    return ParentFact(
        role=parent.role,
        citizen_id=parent.citizen_id,
        permit=_permit(ps, provenance, scope, as_of),
        alive=_life(ps, hs, provenance, as_of).alive,
        link_event_ids=parent.link_event_ids,
        residence=_residence(ps, provenance, scope, as_of),
    )


def _life(ps: PublicSecurityState, hs: HealthState, provenance: _Provenance, as_of: date) -> LifeFact:
    # Public security's date first (it owns identity), else health's certified date: the view's precedence.
    if ps.deceased_on is not None and ps.deceased_on <= as_of:
        return LifeFact(False, ps.deceased_on, tuple(provenance.ps_death))
    if hs.death is not None and hs.death.died_on <= as_of:
        return LifeFact(False, hs.death.died_on, tuple(provenance.health_death))
    return LifeFact(True, None)


def _encoded_birth_date(citizen_id: str) -> date | None:
    # The digits themselves: events.citizen_id.birth_date_of re-validates against today, and facts must not
    # depend on the clock. The ID was validated on its way in.
    try:
        return date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))
    except ValueError:
        return None


def _age(citizen_id: str, ps: PublicSecurityState, provenance: _Provenance, life: LifeFact, as_of: date) -> AgeFact:
    on = min(as_of, life.deceased_on) if life.deceased_on is not None else as_of
    if ps.identity.birth_date is not None:
        birth = ps.identity.birth_date
        return AgeFact(birth, completed_years(birth, on), "birth.registered", tuple(provenance.identity))
    encoded = _encoded_birth_date(citizen_id)
    return AgeFact(encoded, completed_years(encoded, on) if encoded else None, "citizen_id")


def _hukou(ps: PublicSecurityState, provenance: _Provenance, scope: CityScope) -> HukouFact:
    hukou = ps.hukou
    registered = hukou.status == "registered"
    return HukouFact(
        status=hukou.status,
        region_code=hukou.region_code,
        urban=hukou.urban,
        registered_on=hukou.registered_on,
        in_city=registered and scope.contains(hukou.region_code),
        event_ids=tuple(provenance.hukou),
        household_id=hukou.household_id,
        household_type=hukou.household_type,
        relationship=hukou.relationship,
        address=hukou.address,
        legacy_nature=hukou.legacy_nature,
        cancelled_reason=hukou.cancelled_reason,
        cancelled_on=hukou.cancelled_on,
    )


def _origin(citizen_id: str, ps: PublicSecurityState, provenance: _Provenance, scope: CityScope) -> OriginFact:
    earlier = [
        (period.region_code, ids)
        for period, ids in zip(ps.hukou.history, provenance.hukou_history, strict=False)
        if scope.contains(period.region_code)
    ]
    hukou = ps.hukou
    urban_flags = [period.urban for period in hukou.history]
    if hukou.status != "none" and hukou.urban is not None:
        urban_flags.append(hukou.urban)
    rural: bool | None = None
    if urban_flags or hukou.legacy_nature is not None:
        rural = not all(urban_flags) or hukou.legacy_nature == "agricultural"
    return OriginFact(
        id_division=citizen_id[:6],
        id_division_in_city=scope.contains(citizen_id[:6]),
        earlier_hukou_regions=tuple(dict.fromkeys(code for code, _ in earlier)),
        event_ids=_ids(*(ids for _, ids in earlier)),
        rural=rural,
    )


def _residence(ps: PublicSecurityState, provenance: _Provenance, scope: CityScope, as_of: date) -> ResidenceFact:
    # (registration, ended_on or None, event ids) for every registration we know of.
    known: list[tuple[ResidenceRegistration, date | None, list[str]]] = [
        (h, h.ended_on, ids) for h, ids in zip(ps.residence_history, provenance.residence_history, strict=False)
    ]
    if ps.residence_registration is not None:
        known.append((ps.residence_registration, None, provenance.residence))
    in_force = [
        item for item in known if item[0].since <= as_of and (item[1] is None or as_of < item[1])
    ]  # ``ended_on`` is the first day no longer lived there (a new registration's ``since``)
    if not in_force:
        return ResidenceFact(registered=False)
    # The open registration first, else the latest that started (registrations recorded ahead of time).
    current, _, current_ids = max(in_force, key=lambda item: (item[1] is None, item[0].since))
    in_city = scope.contains(current.region_code)
    start = current.since
    chain_ids = list(current_ids)
    if in_city:
        # Walk back through earlier registrations in the city that end where the run starts: a move inside
        # the city keeps the residence continuous.
        earlier = sorted(
            (item for item in known if item[1] is not None and scope.contains(item[0].region_code)),
            key=lambda item: item[0].since,
            reverse=True,
        )
        extended = True
        while extended:
            extended = False
            for registration, ended_on, ids in earlier:
                assert ended_on is not None
                if registration.since < start <= ended_on:
                    start = registration.since
                    chain_ids = [*ids, *chain_ids]
                    extended = True
                    break
    return ResidenceFact(
        registered=True,
        region_code=current.region_code,
        urban=current.urban,
        since=current.since,
        basis=current.basis,
        tenure=current.tenure,
        in_city=in_city,
        months_at_address=whole_months(current.since, as_of) if in_city else 0,
        continuous_since=start if in_city else None,
        continuous_months=whole_months(start, as_of) if in_city else 0,
        event_ids=_ids(chain_ids),
        address=current.address,
    )


def _permit(ps: PublicSecurityState, provenance: _Provenance, scope: CityScope, as_of: date) -> PermitFact:
    known: list[tuple[Permit, list[str]]] = []
    if ps.permit is not None:
        known.append((ps.permit, provenance.permit))
    earlier = list(zip(ps.permit_history, provenance.permit_history, strict=False))
    known.extend(sorted(earlier, key=lambda item: item[0].issued_on, reverse=True))
    if not known:
        return PermitFact(held=False)
    # The statistics' rule (services.query_api.statistics): the first permit valid on as_of, the current one
    # before earlier ones; if none is valid, the current one explains why.
    chosen = next(((p, ids) for p, ids in known if permit_status(p, as_of) == "valid"), known[0])
    permit, ids = chosen
    return PermitFact(
        held=True,
        permit_no=permit.permit_no,
        region_code=permit.region_code,
        status=permit_status(permit, as_of),
        issued_on=permit.issued_on,
        valid_until=permit.valid_until,
        in_city=scope.contains(permit.region_code),
        event_ids=tuple(ids),
    )


def _employment(ss: SocialSecurityState, provenance: _Provenance, scope: CityScope, as_of: date) -> EmploymentFact:
    known: list[tuple[EmploymentRecord, date | None, list[str]]] = [
        (e, e.ended_on, ids) for e, ids in zip(ss.employment_history, provenance.employment_history, strict=False)
    ]
    known.extend((e, None, provenance.employers.get(e.employer_code, [])) for e in ss.employers)
    jobs = [
        Job(
            employer_code=record.employer_code,
            employer_name=record.employer_name,
            region_code=record.region_code,
            started_on=record.started_on,
            months=whole_months(record.started_on, as_of),
            in_city=scope.contains(record.region_code),
            event_ids=tuple(ids),
        )
        for record, ended_on, ids in known
        if record.started_on <= as_of and (ended_on is None or as_of < ended_on)
    ]
    jobs.sort(key=lambda j: (j.started_on, j.employer_code))
    return EmploymentFact(tuple(jobs))


def _scheme_active(scheme: SchemeState, as_of: date) -> bool:
    if scheme.since > as_of:
        return False
    return scheme.status == "active" or (scheme.stopped_on is not None and as_of < scheme.stopped_on)


def _insurance(ss: SocialSecurityState, provenance: _Provenance, scope: CityScope, as_of: date) -> InsuranceFact:
    facts = [
        SchemeFact(
            scheme=name,
            active=_scheme_active(scheme, as_of),
            region_code=scheme.region_code,
            in_city=scope.contains(scheme.region_code),
            months_in_city=sum(m for region, m in scheme.months_by_region.items() if scope.contains(region)),
            months_total=sum(scheme.months_by_region.values()),
            since=scheme.since,
            event_ids=tuple(provenance.schemes.get(name, [])),
        )
        for name, scheme in sorted(ss.schemes.items())
    ]
    return InsuranceFact(tuple(facts))


_SUMMER: Final = 92
"""Days between two schools (a summer's break) that leave schooling unbroken."""


def _education(ed: EducationState, provenance: _Provenance, as_of: date, scope: CityScope) -> EducationFact:
    graduations = [
        Graduation(entry.stage, entry.on, entry.qualification, eid)
        for entry, eid in zip(ed.history, provenance.education_history, strict=False)
        if entry.kind == "graduated" and entry.stage is not None and entry.on <= as_of
    ]
    # Periods at one school: (region, stage, start, end or None, how it ended, event ids), from the history up
    # to as_of in the order of the dates (an event recorded late still falls in its place).
    steps = sorted(
        ((entry, eid) for entry, eid in zip(ed.history, provenance.education_history, strict=False)),
        key=lambda step: step[0].on,
    )
    periods: list[tuple[str | None, Stage | None, date, date | None, str, list[str]]] = []
    for entry, eid in steps:
        if entry.on > as_of:
            break
        if periods and periods[-1][3] is None:
            region, stage, start, _, _, ids = periods[-1]
            periods[-1] = (region, stage, start, entry.on, entry.kind, [*ids, eid])
        if entry.kind in ("enrolled", "transferred"):
            periods.append((entry.region_code, entry.stage, entry.on, None, "", [eid]))
    if not periods or periods[-1][3] is not None:
        return EducationFact(tuple(graduations))
    region, stage, start, _, _, ids = periods[-1]
    in_city = scope.contains(region)
    run_ids = list(ids)
    if in_city:
        for earlier_region, _, earlier_start, earlier_end, ended_by, earlier_ids in reversed(periods[:-1]):
            # A transfer, or a stage completed and the next begun within a summer, keeps the run; a withdrawal or
            # a school elsewhere breaks it.
            gap = (start - earlier_end).days if earlier_end is not None else None
            bridged = ended_by in ("transferred", "enrolled") or (ended_by == "graduated" and gap is not None)
            if not scope.contains(earlier_region) or gap is None or gap > _SUMMER or not bridged:
                break
            start, run_ids = earlier_start, [*earlier_ids, *run_ids]
    return EducationFact(
        tuple(graduations),
        enrolled_stage=stage,
        enrolled_region=region,
        enrolled_in_city=in_city,
        schooling_since=start if in_city else None,
        school_months_in_city=whole_months(start, as_of) if in_city else 0,
        schooling_event_ids=_ids(run_ids),
    )


def _certificates(ss: SocialSecurityState, provenance: _Provenance, as_of: date) -> CertificatesFact:
    return CertificatesFact(
        tuple(
            Certificate(t.program, t.certificate_no, t.level, t.completed_on, eid)
            for t, eid in zip(ss.trainings, provenance.trainings, strict=False)
            if t.certificate_no is not None and t.completed_on <= as_of
        )
    )
