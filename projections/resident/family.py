"""Family facts: who is whose parent, which birth certificate names whom, who lives in which household.

A family links *several* residents, so it cannot live inside one resident's state: the store keeps it in its
own tables and the query side joins it on read (CONTRACT §6, ``family``). This module is the pure half of
that: it extracts facts from events and states, and defines ``FamilyView``, what the reader hands to
``render_view``. It does no I/O.

A birth is told twice — by health (``birth.certified``, subject = the mother, the child has no ID yet) and by
public security (``birth.registered``, subject = the child). Both yield a ``BirthCertificate`` fact, and the
store keeps one ``CertificateRecord`` per certificate **and mother**: certificate numbers are only unique per
issuer, so two mothers' certificates with the same number must never merge (a registration that names no
mother has no record: nothing to join with, and the child's parents are in its parent links anyway). The two
events of one birth live on different partitions and arrive in any order, so the record is a join of
statements that does not depend on their order (``merge_certificates``): per department the latest statement
(by ``recorded_at``, then ``event_id``), and where both departments speak, public security's registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, TypeAlias
from uuid import UUID

from events.envelope import Event, Payload
from events.fields import Department, Sex
from events.health import BirthCertified
from events.public_security import BirthRegistered, HouseholdType, Relationship
from projections.resident.state import PublicSecurityState

__all__ = [
    "BirthCertificate",
    "CertificateRecord",
    "CertificateStatement",
    "ChildRef",
    "FamilyFact",
    "FamilyView",
    "HouseholdMember",
    "Membership",
    "ParentLink",
    "certificate_record",
    "family_facts",
    "household_membership",
    "merge_certificates",
]


@dataclass(frozen=True, slots=True)
class ParentLink:
    """``parent_citizen_id`` is the ``role`` of ``child_citizen_id``, as ``department`` registered it."""

    child_citizen_id: str
    parent_citizen_id: str
    role: Literal["mother", "father"]
    department: Department


@dataclass(frozen=True, slots=True)
class BirthCertificate:
    """What one department knows about a birth certificate (出生医学证明).

    ``child_citizen_id`` is ``None`` when health reports the birth (the child has no number yet);
    ``mother_citizen_id`` is ``None`` when public security registered a birth without naming the mother. The
    store keeps a ``CertificateRecord`` per certificate number and mother (``certificate_record``).
    """

    certificate_no: str
    mother_citizen_id: str | None
    father_citizen_id: str | None
    child_name: str
    child_sex: Sex
    birth_date: date
    child_citizen_id: str | None
    department: Department


FamilyFact: TypeAlias = ParentLink | BirthCertificate


def family_facts(event: Event[Payload]) -> list[FamilyFact]:
    """The family facts an event states (empty for the event types that state none)."""
    payload = event.payload
    if isinstance(payload, BirthRegistered):
        return _from_birth_registration(event.citizen_id, payload)
    if isinstance(payload, BirthCertified):
        return [
            BirthCertificate(
                certificate_no=payload.certificate_no,
                mother_citizen_id=event.citizen_id,
                father_citizen_id=payload.father_citizen_id,
                child_name=payload.child_name,
                child_sex=payload.child_sex,
                birth_date=payload.birth_date,
                child_citizen_id=None,
                department="health",
            )
        ]
    return []


def _from_birth_registration(child: str, payload: BirthRegistered) -> list[FamilyFact]:
    facts: list[FamilyFact] = []
    if payload.mother_citizen_id is not None:
        facts.append(ParentLink(child, payload.mother_citizen_id, "mother", "public_security"))
    if payload.father_citizen_id is not None:
        facts.append(ParentLink(child, payload.father_citizen_id, "father", "public_security"))
    if payload.birth_certificate_no is not None:
        facts.append(
            BirthCertificate(
                certificate_no=payload.birth_certificate_no,
                mother_citizen_id=payload.mother_citizen_id,
                father_citizen_id=payload.father_citizen_id,
                child_name=payload.name,
                child_sex=payload.sex,
                birth_date=payload.birth_date,
                child_citizen_id=child,
                department="public_security",
            )
        )
    return facts


@dataclass(frozen=True, slots=True)
class CertificateStatement:
    """What one event stated about a birth certificate, and which event (and when it was recorded)."""

    event_id: UUID
    recorded_at: datetime
    father_citizen_id: str | None
    child_name: str
    child_sex: Sex
    birth_date: date
    child_citizen_id: str | None = None  # only public security's registration knows the child's own number

    def rank(self) -> tuple[datetime, int, str, str, str, date, str]:
        """The order in which statements supersede each other: recorded later wins, then the larger ``event_id``
        (the rest only makes the order total, should one event ever be stated twice differently)."""
        return (
            self.recorded_at,
            self.event_id.int,
            self.father_citizen_id or "",
            self.child_name,
            self.child_sex,
            self.birth_date,
            self.child_citizen_id or "",
        )


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One birth certificate of one mother: the latest statement of each department, and what they say together.

    The merged fields below are public security's where it has spoken (it registers the child and is
    authoritative), health's where it has not — or where the registration leaves the father out.
    """

    certificate_no: str
    mother_citizen_id: str
    registration: CertificateStatement | None = None
    certification: CertificateStatement | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.certificate_no, self.mother_citizen_id)

    def _first(self) -> CertificateStatement:
        first = self.registration or self.certification
        if first is None:
            raise ValueError(f"certificate {self.certificate_no} of {self.mother_citizen_id} has no statement")
        return first

    @property
    def father_citizen_id(self) -> str | None:
        registered = self.registration.father_citizen_id if self.registration else None
        return registered or (self.certification.father_citizen_id if self.certification else None)

    @property
    def child_name(self) -> str:
        return self._first().child_name

    @property
    def child_sex(self) -> Sex:
        return self._first().child_sex

    @property
    def birth_date(self) -> date:
        return self._first().birth_date

    @property
    def child_citizen_id(self) -> str | None:
        return self.registration.child_citizen_id if self.registration else None

    @property
    def registered_event_id(self) -> UUID | None:
        return self.registration.event_id if self.registration else None

    @property
    def certified_event_id(self) -> UUID | None:
        return self.certification.event_id if self.certification else None


def certificate_record(fact: BirthCertificate, event_id: UUID, recorded_at: datetime) -> CertificateRecord | None:
    """The record of one statement about a certificate; ``None`` when it names no mother (no key to keep it by)."""
    if fact.mother_citizen_id is None:
        return None
    statement = CertificateStatement(
        event_id=event_id,
        recorded_at=recorded_at,
        father_citizen_id=fact.father_citizen_id,
        child_name=fact.child_name,
        child_sex=fact.child_sex,
        birth_date=fact.birth_date,
        child_citizen_id=fact.child_citizen_id,
    )
    if fact.department == "public_security":
        return CertificateRecord(fact.certificate_no, fact.mother_citizen_id, registration=statement)
    return CertificateRecord(fact.certificate_no, fact.mother_citizen_id, certification=statement)


def merge_certificates(a: CertificateRecord, b: CertificateRecord) -> CertificateRecord:
    """Both records of one certificate as one: per department, the statement that supersedes the other.

    Commutative, associative and idempotent, so the stored record is the same whatever order the statements
    arrive in — across partitions, batches, a live run and a rebuild.
    """
    if a.key != b.key:
        raise ValueError(f"different certificates: {a.key} and {b.key}")
    return CertificateRecord(
        a.certificate_no,
        a.mother_citizen_id,
        registration=_later(a.registration, b.registration),
        certification=_later(a.certification, b.certification),
    )


def _later(a: CertificateStatement | None, b: CertificateStatement | None) -> CertificateStatement | None:
    if a is None or b is None:
        return a or b
    return a if a.rank() >= b.rank() else b


class Membership(NamedTuple):
    """A resident's place in a hukou household, as the household table stores it.

    A named tuple, so ``household_id, household_type, relationship, region_code = membership`` works too.
    """

    household_id: str
    household_type: HouseholdType
    relationship: Relationship
    region_code: str


def household_membership(state: PublicSecurityState) -> Membership | None:
    """The household a resident belongs to now; ``None`` unless the hukou is registered.

    A moved-out or cancelled hukou keeps its last household fields for the record, but the person is no
    longer a member of that household.
    """
    hukou = state.hukou
    if hukou.status != "registered":
        return None
    # Every registration (birth.registered, hukou.registered) sets all four fields.
    assert hukou.household_id is not None and hukou.household_type is not None
    assert hukou.relationship is not None and hukou.region_code is not None
    return Membership(hukou.household_id, hukou.household_type, hukou.relationship, hukou.region_code)


@dataclass(frozen=True, slots=True)
class ChildRef:
    """A child of the resident: by citizen ID once registered, by birth certificate before that."""

    citizen_id: str | None = None
    name: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    certificate_no: str | None = None


@dataclass(frozen=True, slots=True)
class HouseholdMember:
    """Another member of the resident's hukou household and their relationship to its head."""

    citizen_id: str
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class FamilyView:
    """The family section as the reader assembled it from the family and household tables.

    ``children`` and ``household_members`` take the dataclasses above or plain mappings with the same keys
    (as read from the tables; a child's ``birth_date`` may then be an ISO string). ``render_view`` sorts
    them, so the order given does not matter. Whether the resident appears among the household members is
    the reader's choice; ``render_view`` shows the list as given.
    """

    mother: str | None = None
    father: str | None = None
    children: Sequence[ChildRef | Mapping[str, Any]] = ()
    household_members: Sequence[HouseholdMember | Mapping[str, Any]] = ()
