"""Education (教育) events: enrolment, transfer, graduation and withdrawal of students.

Migrant children's schooling on the residence permit (Nantong (8)) and years of continuous local schooling
(Liaoyuan (7)) are both folded from these events.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field

from events.citizen_id import RegionCode
from events.envelope import Payload
from events.fields import Day, Department, Identifier, Text

__all__ = [
    "PAYLOADS",
    "Stage",
    "StudentEnrolled",
    "StudentGraduated",
    "StudentTransferred",
    "StudentWithdrawn",
]

Stage = Literal["preschool", "primary", "junior_secondary", "senior_secondary", "vocational", "higher"]
"""Stage of education."""

Grade = Annotated[int, Field(ge=1, le=12, description="Year of study within the stage, counted from 1.")]

_DEPARTMENT: Final[Department] = "education"


class StudentEnrolled(Payload):
    """A student enrols at a school."""

    event_type: ClassVar[str] = "student.enrolled"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    student_no: Identifier
    school_code: Identifier
    school_name: Text
    region_code: RegionCode
    stage: Stage
    grade: Grade | None = None
    enrolled_on: Day
    migrant_child: bool


class StudentTransferred(Payload):
    """A student moves to another school (stage and grade carry over)."""

    event_type: ClassVar[str] = "student.transferred"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    school_code: Identifier
    school_name: Text
    region_code: RegionCode
    transferred_on: Day


class StudentGraduated(Payload):
    """A student completes a stage."""

    event_type: ClassVar[str] = "student.graduated"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    stage: Stage
    graduated_on: Day
    qualification: Text | None = None


class StudentWithdrawn(Payload):
    """A student leaves school without completing the stage."""

    event_type: ClassVar[str] = "student.withdrawn"
    department: ClassVar[Department] = _DEPARTMENT
    schema_version: ClassVar[int] = 1

    withdrawn_on: Day
    reason: Text


PAYLOADS: Final[tuple[type[Payload], ...]] = (
    StudentEnrolled,
    StudentTransferred,
    StudentGraduated,
    StudentWithdrawn,
)
"""Every education payload class, in catalogue order."""
