"""The resident view: one citizen's facts from the four departments, folded purely from their events.

* ``state`` — the immutable state each department keeps (raw facts only) and its JSON form;
* ``apply`` — ``apply(state, event)``, the pure fold, and ``fold`` over a citizen's history;
* ``render`` — ``render_view``, the contract's view for an ``as_of`` date, with ``flags`` and ``dates``;
* ``family`` — family and household facts, kept in their own tables and joined on read;
* ``batch`` — one batch of events folded into the rows it writes, and the ``ProjectionStore`` protocol;
* ``memory`` — that store in memory, for the projector's unit tests.

Nothing here does I/O or reads the clock but ``store``, the PostgreSQL adapter and the resident reads.
"""

from __future__ import annotations

from projections.resident.apply import ProjectionError, apply, fold, fold_by_citizen
from projections.resident.family import (
    BirthCertificate,
    CertificateRecord,
    CertificateStatement,
    ChildRef,
    FamilyFact,
    FamilyView,
    HouseholdMember,
    Membership,
    ParentLink,
    certificate_record,
    family_facts,
    household_membership,
    merge_certificates,
)
from projections.resident.flags import Flag, evaluate_flags
from projections.resident.render import VIEW_SECTIONS, Meta, permit_status, render_view
from projections.resident.state import (
    DEPARTMENTS,
    DepartmentState,
    EducationState,
    HealthState,
    PublicSecurityState,
    SocialSecurityState,
    initial_state,
    state_from_json,
    state_to_json,
)

__all__ = [
    "DEPARTMENTS",
    "VIEW_SECTIONS",
    "BirthCertificate",
    "CertificateRecord",
    "CertificateStatement",
    "ChildRef",
    "DepartmentState",
    "EducationState",
    "FamilyFact",
    "FamilyView",
    "Flag",
    "HealthState",
    "HouseholdMember",
    "Membership",
    "Meta",
    "ParentLink",
    "ProjectionError",
    "PublicSecurityState",
    "SocialSecurityState",
    "apply",
    "certificate_record",
    "evaluate_flags",
    "family_facts",
    "fold",
    "fold_by_citizen",
    "household_membership",
    "initial_state",
    "merge_certificates",
    "permit_status",
    "render_view",
    "state_from_json",
    "state_to_json",
]
