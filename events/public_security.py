"""Public-security (公安) events: births, hukou, identity, residence registration and residence permits.

Public security is the lead department and the one source of identity, hukou and residence data.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, Self

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from events.citizen_id import CitizenId, RegionCode
from events.envelope import Payload
from events.fields import BirthDay, Day, Department, Identifier, Name, Sex, ShortText, Text

__all__ = [
    "PAYLOADS",
    "BirthRegistered",
    "CarriedIdentity",
    "DuplicateMerged",
    "HouseholdType",
    "HukouCancelled",
    "HukouMovedOut",
    "HukouRegistered",
    "IdentityCorrected",
    "NumberChangeReason",
    "NumberChanged",
    "Relationship",
    "ResidenceBasis",
    "ResidenceEnded",
    "ResidencePermitIssued",
    "ResidencePermitRenewed",
    "ResidencePermitRevoked",
    "ResidenceRegistered",
]

HouseholdType = Literal["family", "collective"]
"""居民家庭户 / 居民集体户: the only two kinds of household after the reform."""

Relationship = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "other"]
"""Relationship to the head of the household."""

SettlementReason = Literal[
    "birth",
    "stable_residence",
    "stable_employment",
    "talent",
    "graduate",
    "veteran",
    "family_reunion",
    "points",
    "collective",
    "return",
    "other",
]
"""Why a hukou was registered (settled) here."""

LegacyNature = Literal["agricultural", "non_agricultural", "blue_seal"]
"""The hukou nature before unification, kept as provable history."""

CancellationReason = Literal["death", "emigration", "military_service", "duplicate", "other"]

ResidenceBasis = Literal["employment", "residence", "study"]
"""The condition a residence registration or permit rests on (居住证暂行条例 Art. 2)."""

Tenure = Literal["owned", "rented", "employer", "other"]

_DEPARTMENT: Final[Department] = "public_security"


class BirthRegistered(Payload):
    """A birth is registered: the child gets a citizen ID and a hukou in a household."""

    event_type: ClassVar[str] = "birth.registered"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    name: Name
    sex: Sex
    birth_date: BirthDay
    ethnicity: ShortText
    household_id: Identifier
    household_type: HouseholdType
    relationship: Relationship
    address: Text
    region_code: RegionCode
    urban: bool
    mother_citizen_id: CitizenId | None = None
    father_citizen_id: CitizenId | None = None
    birth_certificate_no: Identifier | None = None


class CarriedIdentity(Payload):
    """Identity a registration may carry (v2 of ``hukou.registered`` and ``residence.registered``): the person as
    their documents name them, so that someone born elsewhere is not anonymous in the view. Each field is
    optional; public security's view takes each only where it has none yet (``projections.resident.apply``)."""

    name: Name | None = None
    sex: Sex | None = None
    birth_date: BirthDay | None = None
    ethnicity: ShortText | None = None


class HukouRegistered(CarriedIdentity):
    """A person settles (落户): their permanent hukou is registered in a household here.

    v2 added the optional identity fields of ``CarriedIdentity``; a v1 event is read as v2 unchanged."""

    event_type: ClassVar[str] = "hukou.registered"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 2

    household_id: Identifier
    household_type: HouseholdType
    relationship: Relationship
    address: Text
    region_code: RegionCode
    urban: bool
    reason: SettlementReason
    from_region_code: RegionCode | None = None
    legacy_nature: LegacyNature | None = None


class HukouMovedOut(Payload):
    """The hukou moves to another division (迁出)."""

    event_type: ClassVar[str] = "hukou.moved_out"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    to_region_code: RegionCode
    reason: Text


class HukouCancelled(Payload):
    """The hukou is cancelled (注销): death, emigration, military service, a duplicate…"""

    event_type: ClassVar[str] = "hukou.cancelled"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    reason: CancellationReason


class IdentityCorrected(Payload):
    """A registered name or ethnicity is corrected; fields left out stay as they were."""

    event_type: ClassVar[str] = "identity.corrected"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    name: Name | None = None
    ethnicity: ShortText | None = None

    @model_validator(mode="after")
    def _something_corrected(self) -> Self:
        if self.name is None and self.ethnicity is None:
            raise PydanticCustomError("nothing_corrected", "identity.corrected needs at least one of name, ethnicity")
        return self


NumberChangeReason = Literal["correction", "duplicate_number", "other"]
"""Why public security gave a person a new citizen ID: a number issued with a wrong birth date or check, a number
issued twice (重号), or another reason."""


class NumberChanged(Payload):
    """The person's citizen ID changed (§12): the envelope's ``citizen_id`` is the new number; every earlier and
    later event under ``previous_citizen_id`` stays the same person's."""

    event_type: ClassVar[str] = "identity.number_changed"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1
    other_number_fields: ClassVar[tuple[str, ...]] = ("previous_citizen_id",)

    previous_citizen_id: CitizenId
    reason: NumberChangeReason
    changed_on: Day


class DuplicateMerged(Payload):
    """A duplicate registration of one person is cancelled into the one that survives (一人多户 / 一人多号, §12):
    the envelope's ``citizen_id`` is the surviving number; ``duplicate_citizen_id``'s events become the person's."""

    event_type: ClassVar[str] = "identity.duplicate_merged"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1
    other_number_fields: ClassVar[tuple[str, ...]] = ("duplicate_citizen_id",)

    duplicate_citizen_id: CitizenId
    merged_on: Day


class ResidenceRegistered(CarriedIdentity):
    """A person registers residence away from their hukou place (居住登记).

    v2 added the optional identity fields of ``CarriedIdentity``; a v1 event is read as v2 unchanged."""

    event_type: ClassVar[str] = "residence.registered"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 2

    address: Text
    region_code: RegionCode
    urban: bool
    since: Day
    basis: ResidenceBasis
    tenure: Tenure | None = None


class ResidenceEnded(Payload):
    """The residence registration ends (the person left the address)."""

    event_type: ClassVar[str] = "residence.ended"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    ended_on: Day


class ResidencePermitIssued(Payload):
    """A residence permit (居住证) is issued."""

    event_type: ClassVar[str] = "residence_permit.issued"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    permit_no: Identifier
    region_code: RegionCode
    issued_on: Day
    valid_until: Day
    basis: ResidenceBasis

    @model_validator(mode="after")
    def _valid_after_issue(self) -> Self:
        if self.valid_until < self.issued_on:
            raise PydanticCustomError(
                "date_order",
                "valid_until ({valid_until}) must not be before issued_on ({issued_on})",
                {"valid_until": self.valid_until.isoformat(), "issued_on": self.issued_on.isoformat()},
            )
        return self


class ResidencePermitRenewed(Payload):
    """A residence permit is renewed (签注) until a new date."""

    event_type: ClassVar[str] = "residence_permit.renewed"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    permit_no: Identifier
    valid_until: Day


class ResidencePermitRevoked(Payload):
    """A residence permit is revoked."""

    event_type: ClassVar[str] = "residence_permit.revoked"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    permit_no: Identifier
    reason: Text


PAYLOADS: Final[tuple[type[Payload], ...]] = (
    BirthRegistered,
    HukouRegistered,
    HukouMovedOut,
    HukouCancelled,
    IdentityCorrected,
    NumberChanged,
    DuplicateMerged,
    ResidenceRegistered,
    ResidenceEnded,
    ResidencePermitIssued,
    ResidencePermitRenewed,
    ResidencePermitRevoked,
)
"""Every public-security payload class, in catalogue order."""
