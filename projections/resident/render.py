"""``render_view``: the unified resident view (CONTRACT §6) from the four department states, for one date.

Rendering is where facts that depend on the day are computed — age, a permit's status, months of continuous
residence, whether a family-doctor contract runs — always for the ``as_of`` date the caller passes, never for
the clock. The same states rendered for the same date give the same dict, key for key and in the same order:
collections whose order carries no meaning (schemes, employers, regions, flags, family members) are sorted.

The output is JSON-ready: dates are ``YYYY-MM-DD`` strings, timestamps RFC 3339, money a decimal string. Each
section is rendered from its owning department's state only; ``identity.life_status`` is the one exception the
contract names (public security's death or health's).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal, TypeVar

from projections.resident.dates import completed_years, whole_months
from projections.resident.family import ChildRef, FamilyView, HouseholdMember
from projections.resident.flags import FLAG_SECTIONS, evaluate_flags
from projections.resident.state import (
    DEPARTMENTS,
    DepartmentState,
    EducationState,
    HealthState,
    Permit,
    PublicSecurityState,
    SocialSecurityState,
    initial_state,
)

__all__ = ["VIEW_SECTIONS", "Meta", "PermitStatus", "permit_status", "render_view", "restrict_view"]

VIEW_SECTIONS: Final = (
    "identity",
    "hukou",
    "residence",
    "education",
    "employment",
    "social_insurance",
    "health",
    "family",
    "flags",
    "meta",
)
"""The view's sections after ``citizen_id``, in the contract's order (the grantable view sections)."""

PermitStatus = Literal["valid", "expired", "revoked", "not_yet_valid"]

# Head first, then the order of the contract's relationship enum; ties by citizen ID.
_RELATIONSHIP_ORDER: Final = {
    name: rank for rank, name in enumerate(("head", "spouse", "child", "parent", "grandchild", "sibling", "other"))
}

S = TypeVar("S", PublicSecurityState, EducationState, SocialSecurityState, HealthState)


@dataclass(frozen=True, slots=True)
class Meta:
    """Bookkeeping the store keeps beside the states and hands to ``render_view``.

    ``version`` counts the stored updates of the view; ``event_count`` the events applied (all departments),
    ``event_counts`` and ``last_event_at`` (the latest ``occurred_at`` applied) the same per department.
    """

    version: int = 0
    event_count: int = 0
    event_counts: Mapping[str, int] = field(default_factory=dict)
    last_event_at: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, event_counts: Mapping[str, int], last_event_at: Mapping[str, datetime]) -> Meta:
        """The bookkeeping of sections with ``event_counts`` events applied, the latest business times
        ``last_event_at`` (each an update of the view: the version is the events' count)."""
        total = sum(event_counts.values())
        return cls(version=total, event_count=total, event_counts=event_counts, last_event_at=last_event_at)


def render_view(
    citizen_id: str,
    states: Mapping[str, DepartmentState],
    *,
    as_of: date,
    family: FamilyView | None = None,
    meta: Meta | None = None,
    sections: Collection[str] | None = None,
    aliases: Sequence[str] = (),
) -> dict[str, Any]:
    """The resident view of ``citizen_id`` on ``as_of``, as a JSON-ready dict in the contract's shape.

        ``states`` maps department → state; a missing department counts as one that never spoke about this
        resident. ``family`` is the family section read from the family and household tables (empty if ``None``),
        ``meta`` the store's bookkeeping (zeros if ``None``). ``sections``: render only these view sections (with
        ``citizen_id``; in the contract's order) rather than all of them. ``aliases``: the person's other numbers
    (§12), listed after ``citizen_id`` when there are any. Raises ``ValueError`` if a state is filed under
        another department's name.
    """
    ps = _state(states, "public_security", PublicSecurityState)
    ed = _state(states, "education", EducationState)
    ss = _state(states, "social_security", SocialSecurityState)
    hs = _state(states, "health", HealthState)
    wanted = VIEW_SECTIONS if sections is None else sections
    view: dict[str, Any] = {"citizen_id": citizen_id}
    if aliases and "identity" in wanted:  # other numbers are identity data: only for a reader of the identity
        view["aliases"] = list(aliases)
    # In the contract's order; only what is wanted is computed.
    if "identity" in wanted:
        view["identity"] = _identity(citizen_id, ps, hs, as_of)
    if "hukou" in wanted:
        view["hukou"] = ps.hukou.model_dump(mode="json")
    if "residence" in wanted:
        view["residence"] = _residence(ps, as_of)
    if "education" in wanted:
        view["education"] = ed.model_dump(mode="json")
    if "employment" in wanted:
        view["employment"] = _employment(ss)
    if "social_insurance" in wanted:
        view["social_insurance"] = _social_insurance(ss)
    if "health" in wanted:
        view["health"] = _health(hs, as_of)
    if "family" in wanted:
        view["family"] = _family(family or FamilyView())
    if "flags" in wanted:
        # A flag only for a reader of every section it speaks of; without a choice of sections, all of them.
        view["flags"] = [dict(flag) for flag in evaluate_flags(ps, ed, ss, hs, None if sections is None else wanted)]
    if "meta" in wanted:
        view["meta"] = _meta(meta or Meta())
    return view


def restrict_view(view: Mapping[str, Any], sections: Collection[str]) -> dict[str, Any]:
    """``citizen_id`` and only those of ``sections`` that ``view`` has, in the contract's order — and of its
    ``flags`` only those whose every section is among ``sections``: a whole view restricted is exactly
    ``render_view(..., sections=sections)``."""
    wanted = set(sections)
    out: dict[str, Any] = {"citizen_id": view["citizen_id"]}
    if "aliases" in view and "identity" in wanted:
        out["aliases"] = view["aliases"]
    for name in VIEW_SECTIONS:
        if name in wanted and name in view:
            out[name] = view[name]
    if "flags" in out:
        out["flags"] = [flag for flag in out["flags"] if FLAG_SECTIONS[flag["code"]] <= wanted]
    return out


def _state(states: Mapping[str, DepartmentState], department: str, cls: type[S]) -> S:
    state = states.get(department)
    if state is None:
        state = initial_state(department)
    if not isinstance(state, cls):
        raise ValueError(f"the {department} state must be a {cls.__name__}, got a {type(state).__name__}")
    return state


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _timestamp(moment: datetime) -> str:
    # The events' own form: UTC as "Z", any other offset kept.
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# ---------------------------------------------------------------------------------------------------------
# Identity: public security, with the citizen ID and health as fallbacks
# ---------------------------------------------------------------------------------------------------------


def _encoded_birth_date(citizen_id: str) -> date | None:
    # Read the digits directly rather than through events.citizen_id.birth_date_of, which re-validates
    # against today's date: rendering must not depend on the clock. The ID was validated on the way in.
    try:
        return date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))
    except ValueError:
        return None


def _encoded_sex(citizen_id: str) -> str | None:
    digit = citizen_id[16:17]
    if not digit.isdigit():
        return None
    return "male" if int(digit) % 2 else "female"


def _identity(citizen_id: str, ps: PublicSecurityState, hs: HealthState, as_of: date) -> dict[str, Any]:
    identity = ps.identity
    birth_date = identity.birth_date or _encoded_birth_date(citizen_id)
    # Public security's date first (it owns identity), else health's certified date.
    deceased_on = ps.deceased_on or (hs.death.died_on if hs.death is not None else None)
    # A deceased person's age stays the age they reached.
    age_on = min(as_of, deceased_on) if deceased_on is not None else as_of
    return {
        "name": identity.name,
        "sex": identity.sex or _encoded_sex(citizen_id),
        "birth_date": _iso(birth_date),
        "ethnicity": identity.ethnicity,
        "life_status": "deceased" if deceased_on is not None else "alive",
        "deceased_on": _iso(deceased_on),
        "age": completed_years(birth_date, age_on) if birth_date is not None else None,
    }


# ---------------------------------------------------------------------------------------------------------
# Residence
# ---------------------------------------------------------------------------------------------------------


def permit_status(permit: Permit, as_of: date) -> PermitStatus:
    """A permit's status on ``as_of``: ``revoked``, else ``not_yet_valid``, ``valid`` or ``expired``.

    A permit is valid from ``issued_on`` through ``valid_until``, both days included.
    """
    if permit.revoked:
        return "revoked"
    if as_of < permit.issued_on:
        return "not_yet_valid"
    if as_of > permit.valid_until:
        return "expired"
    return "valid"


def _residence(ps: PublicSecurityState, as_of: date) -> dict[str, Any]:
    registration = ps.residence_registration
    permit: dict[str, Any] | None = None
    if ps.permit is not None:
        p = ps.permit
        permit = {
            "permit_no": p.permit_no,
            "status": permit_status(p, as_of),
            "region_code": p.region_code,
            "issued_on": p.issued_on.isoformat(),
            "valid_until": p.valid_until.isoformat(),
            "basis": p.basis,
            "renewals": p.renewals,
            "revoked_reason": p.revoked_reason,
            "revoked_on": _iso(p.revoked_on),
        }
    return {
        "registration": registration.model_dump(mode="json") if registration is not None else None,
        "permit": permit,
        "continuous_residence_months": (whole_months(registration.since, as_of) if registration is not None else 0),
        "registration_history": [r.model_dump(mode="json") for r in ps.residence_history],
        "permit_history": [p.model_dump(mode="json") for p in ps.permit_history],
    }


# ---------------------------------------------------------------------------------------------------------
# Employment and social insurance
# ---------------------------------------------------------------------------------------------------------


def _employment(ss: SocialSecurityState) -> dict[str, Any]:
    if ss.employers:
        status = "employed"
    elif ss.unemployment is not None:
        status = "unemployed"
    else:
        status = "none"
    employers = sorted(ss.employers, key=lambda e: (e.started_on, e.employer_code))
    return {
        "status": status,
        "employers": [e.model_dump(mode="json") for e in employers],
        "unemployment": ss.unemployment.model_dump(mode="json") if ss.unemployment is not None else None,
        "history": [e.model_dump(mode="json") for e in ss.employment_history],
        "trainings": [t.model_dump(mode="json") for t in ss.trainings],
    }


def _social_insurance(ss: SocialSecurityState) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    for name in sorted(ss.schemes):
        scheme = ss.schemes[name]
        schemes[name] = {
            "status": scheme.status,
            "region_code": scheme.region_code,
            "since": scheme.since.isoformat(),
            "months": sum(scheme.months_by_region.values()),
            "months_by_region": dict(sorted(scheme.months_by_region.items())),
            "employer_code": scheme.employer_code,
            "stopped_on": _iso(scheme.stopped_on),
            "first_period": scheme.first_period,
            "last_period": scheme.last_period,
            "paid_total": format(scheme.paid_total, "f"),
            "unverified_carried_months": scheme.unverified_carried_months,
        }
    return {"schemes": schemes, "card_no": ss.card_no, "card_issued_on": _iso(ss.card_issued_on)}


# ---------------------------------------------------------------------------------------------------------
# Health, family, meta
# ---------------------------------------------------------------------------------------------------------


def _health(hs: HealthState, as_of: date) -> dict[str, Any]:
    doctor: dict[str, Any] | None = None
    if hs.family_doctor is not None:
        d = hs.family_doctor
        doctor = {
            "clinic_code": d.clinic_code,
            "team": d.team,
            "started_on": d.started_on.isoformat(),
            "ends_on": d.ends_on.isoformat(),
            "active": d.started_on <= as_of <= d.ends_on,
        }
    return {
        "record_no": hs.record_no,
        "clinic_code": hs.clinic_code,
        "record_opened_on": _iso(hs.record_opened_on),
        "family_doctor": doctor,
        "vaccinations": hs.vaccinations,
        "death": hs.death.model_dump(mode="json") if hs.death is not None else None,
        "births_certified": sorted(hs.births_certified),
    }


_CHILD_KEYS: Final = ("citizen_id", "name", "sex", "birth_date", "certificate_no")


def _child(child: ChildRef | Mapping[str, Any]) -> dict[str, Any]:
    source: Mapping[str, Any] = asdict(child) if isinstance(child, ChildRef) else child
    out = {key: source.get(key) for key in _CHILD_KEYS}
    if isinstance(out["birth_date"], date):
        out["birth_date"] = out["birth_date"].isoformat()
    return out


def _member(member: HouseholdMember | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(member, HouseholdMember):
        return {"citizen_id": member.citizen_id, "relationship": member.relationship}
    return {"citizen_id": member.get("citizen_id"), "relationship": member.get("relationship")}


def _family(family: FamilyView) -> dict[str, Any]:
    children = sorted(
        (_child(c) for c in family.children),
        key=lambda c: tuple(c[k] or "" for k in ("birth_date", "citizen_id", "certificate_no", "name")),
    )
    members = sorted(
        (_member(m) for m in family.household_members),
        key=lambda m: (
            _RELATIONSHIP_ORDER.get(m["relationship"], len(_RELATIONSHIP_ORDER)),
            m["citizen_id"] or "",
        ),
    )
    return {
        "mother": family.mother,
        "father": family.father,
        "children": children,
        "household_members": members,
    }


def _meta(meta: Meta) -> dict[str, Any]:
    return {
        "version": meta.version,
        "event_count": meta.event_count,
        "event_counts": {d: meta.event_counts[d] for d in DEPARTMENTS if d in meta.event_counts},
        "last_event_at": {d: _timestamp(meta.last_event_at[d]) for d in DEPARTMENTS if d in meta.last_event_at},
    }
