"""HR and social-security (人社) events: employment, unemployment, social insurance, cards and training.

Years of social-insurance contribution and of stable employment drive settlement and the residence-permit
benefits (Xining annex (5), Chengdu 3(3)1, Feicheng 2(1)); transfers between regions (转移接续) carry the
months over.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from events.citizen_id import RegionCode
from events.envelope import Payload
from events.fields import Day, Department, EmployerCode, Identifier, Money, Period, ShortText, Text

__all__ = [
    "PAYLOADS",
    "Contract",
    "EmploymentEnded",
    "EmploymentRegistered",
    "InsuranceContributed",
    "InsuranceEnrolled",
    "InsuranceStopped",
    "InsuranceTransferred",
    "Scheme",
    "SocialSecurityCardIssued",
    "TrainingCompleted",
    "UnemploymentEnded",
    "UnemploymentRegistered",
]

Contract = Literal["fixed_term", "open_ended", "flexible"]

Scheme = Literal[
    "pension_employee",
    "pension_resident",
    "medical_employee",
    "medical_resident",
    "unemployment",
    "work_injury",
    "maternity",
]
"""Social-insurance scheme (五险: pension and medical each for employees and residents)."""

_DEPARTMENT: Final[Department] = "social_security"


class EmploymentRegistered(Payload):
    """Employment with an employer is registered (就业登记)."""

    event_type: ClassVar[str] = "employment.registered"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    employer_code: EmployerCode
    employer_name: Text
    region_code: RegionCode
    started_on: Day
    contract: Contract


class EmploymentEnded(Payload):
    """Employment with an employer ends."""

    event_type: ClassVar[str] = "employment.ended"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    employer_code: EmployerCode
    ended_on: Day
    reason: Text | None = None


class UnemploymentRegistered(Payload):
    """A person registers as unemployed (失业登记)."""

    event_type: ClassVar[str] = "unemployment.registered"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    region_code: RegionCode
    registered_on: Day


class UnemploymentEnded(Payload):
    """The unemployment registration ends."""

    event_type: ClassVar[str] = "unemployment.ended"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    ended_on: Day


class InsuranceEnrolled(Payload):
    """A person joins a social-insurance scheme in a region."""

    event_type: ClassVar[str] = "insurance.enrolled"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    scheme: Scheme
    region_code: RegionCode
    started_on: Day
    employer_code: EmployerCode | None = None


class InsuranceContributed(Payload):
    """Contributions are paid for ``months`` consecutive months starting with ``period``."""

    event_type: ClassVar[str] = "insurance.contributed"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    scheme: Scheme
    period: Period
    months: Annotated[int, Field(ge=1, le=12, description="Number of months paid, 1-12.")]
    amount: Money


class InsuranceTransferred(Payload):
    """A scheme's record moves to another region (转移接续), carrying its months of contribution."""

    event_type: ClassVar[str] = "insurance.transferred"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    scheme: Scheme
    from_region_code: RegionCode
    to_region_code: RegionCode
    # Up to a century of monthly contributions.
    months_carried: Annotated[int, Field(ge=0, le=1200, description="Months of contribution carried over.")]

    @model_validator(mode="after")
    def _between_two_regions(self) -> Self:
        if self.from_region_code == self.to_region_code:
            raise PydanticCustomError(
                "same_region",
                "from_region_code and to_region_code must differ, both are {code}",
                {"code": self.from_region_code},
            )
        return self


class InsuranceStopped(Payload):
    """A person's participation in a scheme stops."""

    event_type: ClassVar[str] = "insurance.stopped"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    scheme: Scheme
    stopped_on: Day
    reason: Text | None = None


class SocialSecurityCardIssued(Payload):
    """A social-security card (社会保障卡) is issued."""

    event_type: ClassVar[str] = "social_security_card.issued"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    card_no: Identifier
    issued_on: Day


class TrainingCompleted(Payload):
    """A vocational training programme is completed (职业技能培训)."""

    event_type: ClassVar[str] = "training.completed"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    program: Text
    completed_on: Day
    level: ShortText | None = None
    certificate_no: Identifier | None = None


PAYLOADS: Final[tuple[type[Payload], ...]] = (
    EmploymentRegistered,
    EmploymentEnded,
    UnemploymentRegistered,
    UnemploymentEnded,
    InsuranceEnrolled,
    InsuranceContributed,
    InsuranceTransferred,
    InsuranceStopped,
    SocialSecurityCardIssued,
    TrainingCompleted,
)
"""Every HR and social-security payload class, in catalogue order."""
