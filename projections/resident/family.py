"""Family facts: who is whose parent, which birth certificate names whom, who lives in which household.

A family links *several* residents, so it cannot live inside one resident's state: the store keeps it in its
own tables and the query side joins it on read (CONTRACT §6, ``family``). This module is the pure half of
that: it extracts facts from events and states, and defines ``FamilyView``, what the reader hands to
``render_view``. It does no I/O.

A birth is told twice — by health (``birth.certified``, subject = the mother, the child has no ID yet) and by
public security (``birth.registered``, subject = the child). Both yield a ``BirthCertificate`` fact keyed by
the certificate number, each filling the columns it knows, so mother, father and child end up linked
whichever event arrives first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, NamedTuple, TypeAlias

from events.envelope import Event, Payload
from events.fields import Department, Sex
from events.health import BirthCertified
from events.public_security import BirthRegistered, HouseholdType, Relationship
from projections.resident.state import PublicSecurityState

__all__ = [
    "BirthCertificate",
    "ChildRef",
    "FamilyFact",
    "FamilyView",
    "HouseholdMember",
    "Membership",
    "ParentLink",
    "family_facts",
    "household_membership",
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
    store upserts by ``certificate_no``, each department writing only the columns it knows.
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
