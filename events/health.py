"""Health (卫健) events: birth and death certificates, health records, family doctors, vaccinations.

Health is the one source of the medical facts; a death certified here but not deregistered by public security
shows up as a flag in the resident view, never as an overwrite.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from events.citizen_id import CitizenId, RegionCode
from events.envelope import Payload
from events.fields import BirthDay, Day, Department, Identifier, Name, Sex, ShortText

__all__ = [
    "PAYLOADS",
    "BirthCertified",
    "DeathCertified",
    "FamilyDoctorContracted",
    "HealthRecordOpened",
    "VaccinationRecorded",
]

_DEPARTMENT: Final[Department] = "health"


class BirthCertified(Payload):
    """A birth medical certificate (出生医学证明) is issued. The event's subject is the **mother**."""

    event_type: ClassVar[str] = "birth.certified"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    certificate_no: Identifier
    child_name: Name
    child_sex: Sex
    birth_date: BirthDay
    father_citizen_id: CitizenId | None = None


class DeathCertified(Payload):
    """A death is medically certified (死亡医学证明)."""

    event_type: ClassVar[str] = "death.certified"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    died_on: Day
    certificate_no: Identifier
    region_code: RegionCode


class HealthRecordOpened(Payload):
    """An electronic health record (健康档案) is opened at a clinic."""

    event_type: ClassVar[str] = "health_record.opened"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    record_no: Identifier
    clinic_code: Identifier
    opened_on: Day


class FamilyDoctorContracted(Payload):
    """A family-doctor contract (家庭医生签约) is signed for a period."""

    event_type: ClassVar[str] = "family_doctor.contracted"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    clinic_code: Identifier
    started_on: Day
    ends_on: Day
    team: ShortText | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_on < self.started_on:
            raise PydanticCustomError(
                "date_order",
                "ends_on ({ends_on}) must not be before started_on ({started_on})",
                {"ends_on": self.ends_on.isoformat(), "started_on": self.started_on.isoformat()},
            )
        return self


class VaccinationRecorded(Payload):
    """A vaccine dose is administered."""

    event_type: ClassVar[str] = "vaccination.recorded"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    vaccine_code: Identifier
    dose: Annotated[int, Field(ge=1, le=99, description="Dose number in the series, from 1.")]
    administered_on: Day
    clinic_code: Identifier


PAYLOADS: Final[tuple[type[Payload], ...]] = (
    BirthCertified,
    DeathCertified,
    HealthRecordOpened,
    FamilyDoctorContracted,
    VaccinationRecorded,
)
"""Every health payload class, in catalogue order."""
