"""Flags: where the departments' facts about one resident do not fit together.

"One source per data item" means no department overwrites another's claim; when two claims clash, or one
department's fact calls for another department's action, the view shows a flag instead of choosing. Each check
is a pure function of the department states that returns a ``Flag`` (a code and a sentence a clerk can act on)
or ``None``; ``evaluate_flags`` runs them all.

Each flag speaks of some of the view's sections — its condition reads them and its detail repeats what they
hold (a death's date and certificate, an employer's name, a hukou's region). ``FLAG_SECTIONS`` declares them
beside the rules (CONTRACT §11): a reader is shown a flag only when it may read every one of them, so a
``flags``-only grant learns nothing that its sections would not tell it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, TypedDict

from projections.resident.state import EducationState, HealthState, PublicSecurityState, SocialSecurityState

__all__ = [
    "EMPLOYEE_SCHEMES",
    "FLAG_SECTIONS",
    "Flag",
    "death_claims_disagree",
    "death_not_deregistered",
    "employed_without_insurance",
    "enrolled_outside_residence",
    "evaluate_flags",
]


class Flag(TypedDict):
    """One flag of the view: a stable ``code`` and a human ``detail``."""

    code: str
    detail: str


FLAG_SECTIONS: Final[dict[str, frozenset[str]]] = {
    # Public security's cancellation (hukou) and recorded death (identity) against health's certificate.
    "death_claims_disagree": frozenset({"identity", "hukou", "health"}),
    # Health's certificate (date and number) against the hukou's status and region.
    "death_not_deregistered": frozenset({"hukou", "health"}),
    # The employers' names against the insurance schemes' status.
    "employed_without_insurance": frozenset({"employment", "social_insurance"}),
    # The school and its region against the hukou's and the residence registration's regions.
    "enrolled_outside_residence": frozenset({"education", "hukou", "residence"}),
}
"""Flag code → the view sections it speaks of (besides ``flags`` itself)."""

EMPLOYEE_SCHEMES: Final = ("pension_employee", "medical_employee")
"""Schemes an employer must enrol an employee in; one of them active counts as insured."""


def death_not_deregistered(ps: PublicSecurityState, health: HealthState) -> Flag | None:
    """Health certified a death, but public security has not cancelled the hukou for death."""
    death = health.death
    if death is None:
        return None
    hukou = ps.hukou
    if hukou.status == "cancelled" and hukou.cancelled_reason == "death":
        return None
    if hukou.status == "none":
        where = "public security has no hukou on record for this person"
    elif hukou.status == "cancelled":
        where = f"the hukou was cancelled for {hukou.cancelled_reason}, not for death"
    else:
        where = f"the hukou is still {hukou.status.replace('_', ' ')} in {hukou.region_code}"
    return Flag(
        code="death_not_deregistered",
        detail=(
            f"Health certified a death on {death.died_on.isoformat()} "
            f"(certificate {death.certificate_no}), but {where}."
        ),
    )


def death_claims_disagree(ps: PublicSecurityState, health: HealthState) -> Flag | None:
    """Public security and health both record a death, on different dates."""
    if ps.deceased_on is None or health.death is None or ps.deceased_on == health.death.died_on:
        return None
    return Flag(
        code="death_claims_disagree",
        detail=(
            f"Public security cancelled the hukou for a death on {ps.deceased_on.isoformat()}, but health "
            f"certified the death on {health.death.died_on.isoformat()} "
            f"(certificate {health.death.certificate_no})."
        ),
    )


def employed_without_insurance(ss: SocialSecurityState) -> Flag | None:
    """Registered employment, but neither employee pension nor employee medical insurance is active."""
    if not ss.employers:
        return None
    if any((scheme := ss.schemes.get(name)) is not None and scheme.status == "active" for name in EMPLOYEE_SCHEMES):
        return None
    employers = ", ".join(sorted(e.employer_name for e in ss.employers))
    return Flag(
        code="employed_without_insurance",
        detail=(f"Employed by {employers}, but neither employee pension nor employee medical insurance is active."),
    )


def _prefecture(region_code: str) -> str:
    # GB/T 2260: the first four digits name the prefecture-level city (地级市).
    return region_code[:4]


def enrolled_outside_residence(ed: EducationState, ps: PublicSecurityState) -> Flag | None:
    """A current school in a city where the student has neither a registered hukou nor a registered residence.

    Compared at prefecture level: attending school in another district of the same city is ordinary. A
    moved-out or cancelled hukou is no tie to the place any more.
    """
    school = ed.current
    if school is None:
        return None
    ties: list[tuple[str, str]] = []
    if ps.hukou.status == "registered" and ps.hukou.region_code is not None:
        ties.append(("hukou", ps.hukou.region_code))
    if ps.residence_registration is not None:
        ties.append(("residence registration", ps.residence_registration.region_code))
    if any(_prefecture(region) == _prefecture(school.region_code) for _, region in ties):
        return None
    enrolled = f"Enrolled at {school.school_name} in {school.region_code}"
    if not ties:
        detail = f"{enrolled}, but public security has neither a hukou nor a residence registration on record."
    else:
        where = " and ".join(f"{what} in {region}" for what, region in ties)
        detail = f"{enrolled}, outside the city of the student's {where}."
    return Flag(code="enrolled_outside_residence", detail=detail)


def evaluate_flags(
    ps: PublicSecurityState,
    ed: EducationState,
    ss: SocialSecurityState,
    hs: HealthState,
    readable: Collection[str] | None = None,
) -> list[Flag]:
    """The flags raised by the four states of one resident, ordered by code; with ``readable`` (the sections the
    reader may read), only those whose every section is among them."""
    found = (
        death_claims_disagree(ps, hs),
        death_not_deregistered(ps, hs),
        employed_without_insurance(ss),
        enrolled_outside_residence(ed, ps),
    )
    shown = (
        flag
        for flag in found
        if flag is not None and (readable is None or FLAG_SECTIONS[flag["code"]].issubset(readable))
    )
    return sorted(shown, key=lambda flag: flag["code"])
