"""The pure evaluator: a policy's rules applied to one resident's facts, every condition explained.

A decision is made of **conditions**, each met or failed (or, for what the v1 events cannot show, not
assessable) and said in words, with the clause it comes from:

* conditions without a route must all be met (alive, hukou not yet in the city, ...);
* conditions with a route belong to one way of qualifying; a route is met when all its conditions are, and
  one met route is enough (an owned home *or* insured employment *or* a diploma ...).

``eligible`` follows from that; ``conclusive`` is false when the answer is "no" only because a route could not
be assessed (a business licence, study abroad): the decision says so rather than guessing. Every decision
names its clause (``rule``), the facts it read with the events behind them, and the parameters it used with
their provenance (``assumed`` ones included).

No I/O, no clock: the facts were derived for ``as_of`` and the evaluator only compares them with parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, get_args

from events.social_security import Scheme
from projections.eligibility.facts import (
    STAGE_RANK,
    EducationFact,
    Facts,
    HukouFact,
    InsuranceFact,
    ParentFact,
    PermitFact,
    ResidenceFact,
    region_label,
)
from projections.eligibility.policy import (
    BlueSealRule,
    CertificateRoute,
    Citation,
    CollectiveHouseholdRule,
    CollectiveTransferRule,
    CompulsoryEducationRule,
    EmploymentRoute,
    FamilyRoute,
    GraduateRoute,
    LocalExamRule,
    MinimumLivingRule,
    NoHukouRule,
    NotAssessableRule,
    PermitProgressiveRule,
    PermitServicesRule,
    PointsParams,
    PointsRule,
    Policy,
    ResidencePermitRule,
    ResidenceRoute,
    ReturneeRoute,
    Route,
    Rule,
    SettlementRule,
    SpouseEmployedRoute,
    UnassessableRoute,
    VeteranRoute,
)

__all__ = ["Decision", "Reason", "RouteOutcome", "evaluate", "evaluate_benefit"]

_ALL_SCHEMES: Final = len(get_args(Scheme))


@dataclass(frozen=True, slots=True)
class Reason:
    """One condition of a decision: met (``True``), failed (``False``) or not assessable (``None``)."""

    condition: str
    met: bool | None
    text: str
    clause: str | None = None
    route: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": self.condition, "met": self.met, "text": self.text}
        if self.clause is not None:
            out["clause"] = self.clause
        if self.route is not None:
            out["route"] = self.route
        return out


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    """One way of qualifying and whether it is met (``None``: cannot be assessed from the events)."""

    route: str
    title: str
    clause: str
    met: bool | None
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"route": self.route, "title": self.title, "clause": self.clause, "met": self.met}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one benefit."""

    benefit: str
    title: str
    eligible: bool
    conclusive: bool
    rule: dict[str, Any]
    reasons: tuple[Reason, ...]
    facts: dict[str, Any]
    parameters: dict[str, Any]
    routes: tuple[RouteOutcome, ...] = ()
    score: int | None = None
    score_breakdown: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "benefit": self.benefit,
            "title": self.title,
            "eligible": self.eligible,
            "conclusive": self.conclusive,
        }
        if self.score is not None:
            out["score"] = self.score
            out["score_breakdown"] = list(self.score_breakdown)
        out["rule"] = self.rule
        out["reasons"] = [r.to_json() for r in self.reasons]
        if self.routes:
            out["routes"] = [r.to_json() for r in self.routes]
        out["facts"] = self.facts
        out["parameters"] = self.parameters
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def evaluate(policy: Policy, facts: Facts) -> list[Decision]:
    """Every benefit of ``policy`` decided for ``facts``, in the policy file's order.

    Raises ``ValueError`` if the facts were derived for another city than the policy's.
    """
    if facts.scope.prefixes != policy.region_prefixes:
        raise ValueError(
            f"the facts were derived for region prefixes {facts.scope.prefixes}, "
            f"not for {policy.policy} ({policy.region_prefixes})"
        )
    return [evaluate_benefit(policy, name, facts) for name in policy.benefits]


def evaluate_benefit(policy: Policy, benefit: str, facts: Facts) -> Decision:
    """One benefit of ``policy`` decided for ``facts``; ``KeyError`` if the policy has no such benefit."""
    rule = policy.benefits[benefit]
    ctx = _Context(policy, benefit, rule, facts)
    _in_force(ctx)
    handler = _HANDLERS[type(rule)]
    return handler(ctx)


def _in_force(ctx: _Context) -> None:
    """The condition every decision shares: the plan applied on the day decided for."""
    window = ctx.policy.in_force
    if window is None:
        return
    day = ctx.facts.as_of
    span = f"from {window.start.value}" + (f" through {window.end.value}" if window.end else " (no end stated)")
    if day < window.start.value:
        text = f"{ctx.policy.document} was not yet in force on {day}: it applies {span}"
    elif window.end is not None and day > window.end.value:
        text = f"{ctx.policy.document} was no longer in force on {day}: it applied {span}"
    else:
        text = f"{ctx.policy.document} was in force on {day} (it applies {span})"
    ctx.condition("in_force", window.covers(day), text, window.clause)


# ---------------------------------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    policy: Policy
    benefit: str
    rule: Rule
    facts: Facts
    reasons: list[Reason] = field(default_factory=list)
    routes: list[RouteOutcome] = field(default_factory=list)
    used: dict[str, Any] = field(default_factory=dict)

    @property
    def city(self) -> str:
        return f"{self.policy.city} ({self.policy.city_en})"

    def ref(self, citation: Citation) -> str:
        return citation.ref(self.policy.policy)

    def condition(
        self, condition: str, met: bool | None, text: str, clause: Citation | None = None, route: str | None = None
    ) -> bool | None:
        self.reasons.append(Reason(condition, met, text, self.ref(clause) if clause else None, route))
        return met

    def fact(self, name: str, value: Any) -> None:
        """Record a fact the decision read (with its events) for the answer."""
        self.used[name] = value.to_json() if hasattr(value, "to_json") else value

    def decide(
        self,
        *,
        score: int | None = None,
        breakdown: Sequence[dict[str, Any]] = (),
        notes: Sequence[str] = (),
    ) -> Decision:
        common = [r.met for r in self.reasons if r.route is None]
        common_met = all(m is True for m in common)
        route_results = [r.met for r in self.routes]
        any_route = not self.routes or any(m is True for m in route_results)
        eligible = common_met and any_route
        # "No" is conclusive unless it hangs on what we could not assess: no shared condition failed and some
        # route was not failed (met, or not assessable).
        routes_possible = not self.routes or any(m is not False for m in route_results)
        undecided = not eligible and not any(m is False for m in common) and routes_possible
        return Decision(
            benefit=self.benefit,
            title=self.rule.title,
            eligible=eligible,
            conclusive=not undecided,
            rule=self.rule.clause.to_json(self.policy.policy),
            reasons=tuple(self.reasons),
            facts=self.used,
            parameters=self.rule.parameters.to_json(),
            routes=tuple(self.routes),
            score=score,
            score_breakdown=tuple(breakdown),
            notes=tuple(notes),
        )

    def route(self, route: Route, met: bool | None) -> None:
        params = getattr(route, "parameters", None)
        self.routes.append(
            RouteOutcome(
                route=route.name,
                title=route.title,
                clause=self.ref(route.clause),
                met=met,
                parameters=params.to_json() if params is not None else {},
            )
        )


def _all(results: Sequence[bool | None]) -> bool | None:
    """AND over conditions: failed if any failed, else unknown if any unknown, else met."""
    if any(r is False for r in results):
        return False
    if any(r is None for r in results):
        return None
    return True


def _alive(ctx: _Context) -> None:
    life = ctx.facts.life
    ctx.fact("life", life)
    if life.alive:
        ctx.condition("alive", True, f"alive on {ctx.facts.as_of}")
    else:
        ctx.condition("alive", False, f"deceased on {life.deceased_on}, before or on {ctx.facts.as_of}")


def _hukou_place(hukou: HukouFact) -> str:
    if hukou.status == "none":
        return "no hukou registration on record"
    where = region_label(hukou.region_code)
    kind = "urban" if hukou.urban else "rural"
    if hukou.status == "registered":
        return f"hukou registered in {where} ({kind} address) since {hukou.registered_on}"
    return f"hukou {hukou.status.replace('_', ' ')} (last registered in {where})"


def _hukou_outside(ctx: _Context, scope: str, clause: Citation | None = None) -> None:
    """Settlement is for people whose hukou is not (``city``) / not at an urban address (``urban``) in the city."""
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    place = _hukou_place(hukou)
    if scope == "urban":
        met = not hukou.urban_in_city
        verdict = "not yet at an urban address in" if met else "already at an urban address in"
        ctx.condition("hukou_not_urban_in_city", met, f"{place}: {verdict} {ctx.city}", clause)
    else:
        met = not hukou.in_city
        verdict = "outside" if met else "already in"
        ctx.condition("hukou_outside_city", met, f"{place}: {verdict} {ctx.city}", clause)


def _permit_words(permit: PermitFact, city: str) -> str:
    if not permit.held:
        return "no residence permit on record"
    where = region_label(permit.region_code)
    return (
        f"residence permit {permit.permit_no} of {where} is {permit.status} "
        f"(issued {permit.issued_on}, valid until {permit.valid_until})"
        + ("" if permit.in_city else f", not a permit of {city}")
    )


def _valid_permit(ctx: _Context, clause: Citation | None = None, route: str | None = None) -> bool:
    permit = ctx.facts.permit
    ctx.fact("permit", permit)
    met = permit.valid_in_city
    ctx.condition("valid_permit_in_city", met, _permit_words(permit, ctx.city), clause, route)
    return met


def _lives_in_city(ctx: _Context, clause: Citation | None = None, route: str | None = None) -> bool:
    residence = ctx.facts.residence
    ctx.fact("residence", residence)
    if not residence.registered:
        text = f"no residence registration in force on {ctx.facts.as_of}"
    else:
        where = region_label(residence.region_code)
        text = f"residence registered in {where} since {residence.since}" + (
            "" if residence.in_city else f", outside {ctx.city}"
        )
    ctx.condition("lives_in_city", residence.in_city, text, clause, route)
    return residence.in_city


# ---------------------------------------------------------------------------------------------------------
# Rule kinds
# ---------------------------------------------------------------------------------------------------------


def _residence_permit(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, ResidencePermitRule)
    params = rule.parameters
    conditions = rule.conditions_clause or rule.clause
    _alive(ctx)
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    verdict = "outside" if not hukou.in_city else "in"
    ctx.condition(
        "hukou_outside_city",
        not hukou.in_city,
        f"{_hukou_place(hukou)}: {verdict} {ctx.city}" + ("" if not hukou.in_city else " (no permit needed)"),
        rule.clause,
    )
    residence = ctx.facts.residence
    _lives_in_city(ctx, rule.clause)
    if params.in_town is not None and params.in_town.value:
        if residence.in_city:
            kind = "an urban address (城镇)" if residence.urban else "a rural address, not in a town"
            text = f"residence registered in {region_label(residence.region_code)} at {kind}"
        else:
            text = f"no residence in {ctx.city}; needs one in a town (城镇)"
        ctx.condition("residence_in_town", residence.in_city and bool(residence.urban), text, rule.clause)
    months, need = residence.continuous_months, params.min_months.value
    if residence.in_city:
        text = f"{months} whole months of continuous residence in {ctx.city} since {residence.continuous_since}"
    else:
        text = f"0 months of residence in {ctx.city}"
    ctx.condition("continuous_residence_months", months >= need, f"{text}; needs {need}", conditions)
    bases = params.bases.value
    if residence.in_city:
        ok = residence.basis in bases
        text = f"basis of the residence registration: {residence.basis}" + (
            "" if ok else f"; needs one of {', '.join(bases)}"
        )
    else:
        ok, text = False, f"no residence in {ctx.city} to rest a permit on (basis must be one of {', '.join(bases)})"
    ctx.condition("basis", ok, text, conditions)
    return ctx.decide()


def _compulsory_education(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, CompulsoryEducationRule)
    params = rule.parameters
    _alive(ctx)
    age = ctx.facts.age
    ctx.fact("age", age)
    low, high = params.min_age.value, params.max_age.value
    if age.age is None:
        ctx.condition("age", False, f"age unknown on {ctx.facts.as_of}", rule.clause)
    else:
        ok = low <= age.age <= high
        ctx.condition(
            "age",
            ok,
            f"aged {age.age} on {ctx.facts.as_of} (born {age.birth_date}); the age this covers is {low}-{high}",
            rule.clause,
        )
    _child_of_the_city(ctx, rule.clause, bool(params.parent_residence and params.parent_residence.value))
    return ctx.decide()


def _child_of_the_city(ctx: _Context, clause: Citation, parent_residence: bool = False) -> None:
    """The routes of a child's schooling rights: the child's hukou in the city, or a parent's valid permit there
    (or, where the plan speaks of the floating population's children, a parent registered as living there)."""
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    ctx.condition(
        "hukou_in_city",
        hukou.in_city,
        f"the child's {_hukou_place(hukou)}: " + ("in " if hukou.in_city else "not in ") + ctx.city,
        clause,
        route="local_hukou",
    )
    ctx.routes.append(RouteOutcome("local_hukou", "the child's hukou is in the city", ctx.ref(clause), hukou.in_city))
    parents: list[ParentFact] = sorted(ctx.facts.parents, key=lambda p: p.role != "mother")
    ctx.fact("parents", [p.to_json() for p in parents])
    what = "a valid permit" + (" or a residence registration" if parent_residence else "")
    if not parents:
        ctx.condition(
            "parent_permit",
            False,
            "no parent on record (parent_links / birth certificates) whose permit could count",
            clause,
            route="parent_permit",
        )
        ctx.routes.append(RouteOutcome("parent_permit", f"a parent holds {what} in the city", ctx.ref(clause), False))
    for parent in parents:
        lives = parent_residence and parent.residence.in_city
        met = (parent.permit.valid_in_city or lives) and parent.alive
        words = _permit_words(parent.permit, ctx.city)
        if parent_residence:
            words += "; " + (
                f"registered as living in {region_label(parent.residence.region_code)}"
                if parent.residence.in_city
                else f"no residence registered in {ctx.city}"
            )
        ctx.condition(
            f"{parent.role}_permit",
            met,
            f"{parent.role} {parent.citizen_id}: {words}" + ("" if parent.alive else " (deceased)"),
            clause,
            route=f"{parent.role}_permit",
        )
        ctx.routes.append(
            RouteOutcome(f"{parent.role}_permit", f"the {parent.role} holds {what} in the city", ctx.ref(clause), met)
        )


def _settlement(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, SettlementRule)
    _alive(ctx)
    _hukou_outside(ctx, rule.parameters.hukou_outside.value, rule.clause)
    for route in rule.routes:
        ctx.route(route, _ROUTES[type(route)](ctx, route))
    return ctx.decide(notes=(_voluntary(ctx, rule.voluntary),))


def _voluntary(ctx: _Context, clause: Citation) -> str:
    return (
        f"Settlement is voluntary ({ctx.ref(clause)}: 「{clause.quote}」): eligibility is an offer to the resident, "
        "never a reason to register anyone without their application."
    )


def _residence_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, ResidenceRoute)
    params = route.parameters
    residence = ctx.facts.residence
    ctx.fact("residence", residence)
    name, clause = route.name, route.clause
    results: list[bool | None] = []
    urban_needed = params.urban_only.value
    place_ok = residence.in_city and (bool(residence.urban) or not urban_needed)
    if not residence.registered:
        text = f"no residence registration in force on {ctx.facts.as_of}"
    else:
        kind = "urban" if residence.urban else "rural"
        text = f"residence registered in {region_label(residence.region_code)} ({kind} address) since {residence.since}"
        if not residence.in_city:
            text += f", outside {ctx.city}"
        elif urban_needed and not residence.urban:
            text += "; needs an urban address (城区/建制镇)"
    results.append(ctx.condition("residence_in_city", place_ok, text, clause, name))
    tenures = params.tenures.value
    ok = place_ok and residence.tenure in tenures
    tenure = residence.tenure or "not recorded"
    results.append(ctx.condition("tenure", ok, f"tenure: {tenure}; counts: {', '.join(tenures)}", clause, name))
    if params.min_months is not None:
        need = params.min_months.value
        months = residence.months_at_address if place_ok else 0
        results.append(
            ctx.condition(
                "months_at_address",
                months >= need,
                f"{months} whole months lived at this address; needs {need}",
                clause,
                name,
            )
        )
    if params.insurance_schemes is not None:
        results.append(_insured(ctx, params.insurance_schemes.value, clause, name))
    return _all(results)


def _insured(ctx: _Context, schemes: Sequence[str], clause: Citation, route: str) -> bool:
    insurance = ctx.facts.insurance
    ctx.fact("insurance", insurance)
    active = insurance.active_in_city(schemes)
    if active:
        text = "social insurance active in the city: " + ", ".join(
            f"{s.scheme} ({region_label(s.region_code)}, since {s.since})" for s in active
        )
    else:
        held = [
            f"{s.scheme} ({'active' if s.active else 'stopped'}, {region_label(s.region_code)})"
            for s in insurance.schemes
        ]
        wanted = "no social-insurance scheme" if len(set(schemes)) >= _ALL_SCHEMES else f"none of {', '.join(schemes)}"
        text = f"{wanted} is active in {ctx.city}" + (
            f" (on record: {'; '.join(held)})" if held else " (no social insurance on record)"
        )
    return bool(ctx.condition("insured_in_city", bool(active), text, clause, route))


def _employed(ctx: _Context, clause: Citation, route: str) -> bool:
    employment = ctx.facts.employment
    ctx.fact("employment", employment)
    jobs = [j for j in employment.jobs if j.in_city]
    if jobs:
        text = "employed in the city: " + "; ".join(
            f"{j.employer_name} ({region_label(j.region_code)}) since {j.started_on}, {j.months} months" for j in jobs
        )
    elif employment.jobs:
        text = "employed only outside the city: " + "; ".join(
            f"{j.employer_name} ({region_label(j.region_code)})" for j in employment.jobs
        )
    else:
        text = f"no registered employment in force on {ctx.facts.as_of}"
    return bool(ctx.condition("employed_in_city", bool(jobs), text, clause, route))


def _employment_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, EmploymentRoute)
    employed = _employed(ctx, route.clause, route.name)
    insured = _insured(ctx, route.parameters.insurance_schemes.value, route.clause, route.name)
    return employed and insured


def _graduate_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, GraduateRoute)
    params = route.parameters
    education = ctx.facts.education
    ctx.fact("education", education)
    stages = params.stages.value
    matching = education.at_stages(stages)
    enrolled = bool(params.while_enrolled and params.while_enrolled.value and education.enrolled_stage in stages)
    if matching:
        best = max(matching, key=lambda g: STAGE_RANK[g.stage])
        text = f"graduated ({best.stage}) on {best.graduated_on}" + (
            f", {best.qualification}" if best.qualification else ""
        )
    elif enrolled:
        text = f"enrolled ({education.enrolled_stage}) at a school in {region_label(education.enrolled_region)}"
    elif education.graduations:
        text = f"highest stage graduated: {education.highest.stage if education.highest else '-'}"
        text += f"; needs one of {', '.join(stages)}"
    else:
        text = f"no graduation on record; needs one of {', '.join(stages)}"
    results: list[bool | None] = [
        ctx.condition("graduated", bool(matching) or enrolled, text, route.clause, route.name)
    ]
    if params.rural_origin is not None and params.rural_origin.value:
        origin = ctx.facts.origin
        ctx.fact("origin", origin)
        if origin.rural is None:
            words = "no hukou on record to show a rural origin (农村籍)"
        else:
            words = "a rural hukou on record (农村籍)" if origin.rural else "only urban hukou on record"
        results.append(ctx.condition("rural_origin", origin.rural, words, route.clause, route.name))
    if params.from_city.value:
        results.append(_origin_condition(ctx, route.clause, route.name))
    if params.employed_in_city.value:
        results.append(_employed(ctx, route.clause, route.name))
    if params.without_employer is not None and params.without_employer.value:
        results.append(_no_employer(ctx, route.clause, route.name))
    return _all(results)


def _certificate_route(ctx: _Context, route: Route) -> bool | None:
    certificates = ctx.facts.certificates
    ctx.fact("certificates", certificates)
    if certificates.certificates:
        text = "skill certificate(s): " + "; ".join(
            f"{c.program} {c.certificate_no}" + (f" ({c.level})" if c.level else "") + f", {c.completed_on}"
            for c in certificates.certificates
        )
        return ctx.condition("skill_certificate", True, text, route.clause, route.name)
    return ctx.condition(
        "skill_certificate", False, "no completed training with a certificate on record", route.clause, route.name
    )


def _unassessable_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, UnassessableRoute)
    return ctx.condition(
        "not_assessable",
        None,
        f"{route.title}: not assessable from the v1 events ({route.missing}); not guessed",
        route.clause,
        route.name,
    )


def _origin_condition(ctx: _Context, clause: Citation, route: str) -> bool:
    origin = ctx.facts.origin
    ctx.fact("origin", origin)
    parts = [
        f"ID issued in {region_label(origin.id_division)}"
        + (" (in the city)" if origin.id_division_in_city else " (outside the city)")
    ]
    if origin.earlier_hukou_regions:
        parts.append("earlier hukou in " + ", ".join(str(region_label(c)) for c in origin.earlier_hukou_regions))
    else:
        parts.append("no earlier hukou in the city")
    return bool(ctx.condition("from_city", origin.from_city, "; ".join(parts), clause, route))


def _no_employer(ctx: _Context, clause: Citation, route: str) -> bool:
    employment = ctx.facts.employment
    ctx.fact("employment", employment)
    text = (
        f"no registered employment in force on {ctx.facts.as_of}"
        if not employment.jobs
        else "has an employer: "
        + "; ".join(f"{j.employer_name} ({region_label(j.region_code)})" for j in employment.jobs)
    )
    return bool(ctx.condition("no_employer", not employment.jobs, text, clause, route))


def _returnee_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, ReturneeRoute)
    results: list[bool | None] = [_origin_condition(ctx, route.clause, route.name)]
    if route.parameters.employed_in_city.value:
        results.append(_employed(ctx, route.clause, route.name))
    return _all(results)


def _veteran_route(ctx: _Context, route: Route) -> bool | None:
    assert isinstance(route, VeteranRoute)
    params = route.parameters
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    served = hukou.status == "cancelled" and hukou.cancelled_reason == "military_service"
    if served:
        text = f"hukou cancelled for military service on {hukou.cancelled_on} and not registered since"
    else:
        text = f"{_hukou_place(hukou)}: no hukou cancelled for military service and awaiting registration"
    results: list[bool | None] = [ctx.condition("discharged_serviceman", served, text, route.clause, route.name)]
    if params.home_in_city is not None and params.home_in_city.value:
        results.append(_home_in_city(ctx, route.clause, route.name))
    if params.employed_in_city.value:
        results.append(_employed(ctx, route.clause, route.name))
    if params.without_employer is not None and params.without_employer.value:
        results.append(_no_employer(ctx, route.clause, route.name))
    return _all(results)


def _home_in_city(ctx: _Context, clause: Citation, route: str) -> bool:
    """A place to settle at in the city: one's origin (原籍), one's residence (居住地), or the hukou of a parent or
    spouse the register links (父母、配偶户籍所在地)."""
    facts = ctx.facts
    ctx.fact("origin", facts.origin)
    ctx.fact("residence", facts.residence)
    places = []
    if facts.origin.from_city:
        places.append("from the city (原籍)")
    if facts.residence.in_city:
        places.append(f"lives in {region_label(facts.residence.region_code)} (居住地)")
    named = [r for r in facts.relatives if r.relation in ("parent", "spouse") and r.facts.hukou.in_city]
    if named:
        ctx.fact("relatives", [r.to_json() for r in named])
    for relative in named:
        places.append(f"{relative.relation} {relative.citizen_id} has a hukou in the city")
    text = (
        "; ".join(places) if places else f"neither from nor living in {ctx.city}, no parent or spouse registered there"
    )
    return bool(ctx.condition("home_in_city", bool(places), text, clause, route))


def _spouse_employed_route(ctx: _Context, route: Route) -> bool | None:
    spouses = [r for r in ctx.facts.relatives if r.relation == "spouse"]
    ctx.fact("relatives", [r.to_json() for r in spouses])
    if not spouses:
        return ctx.condition(
            "spouse_employed",
            None,
            "no spouse linked in the register (only a household names one): marriages are registered by civil "
            "affairs, which publishes no events here",
            route.clause,
            route.name,
        )
    met = False
    words = []
    for spouse in spouses:
        jobs = [j for j in spouse.facts.employment.jobs if j.in_city]
        met = met or (bool(jobs) and spouse.facts.life.alive)
        words.append(
            f"spouse {spouse.citizen_id}: "
            + (f"works in {ctx.city}" if jobs else f"no employment in {ctx.city}")  # not where: their section
        )
    return ctx.condition("spouse_employed", met, "; ".join(words), route.clause, route.name)


_RELATION_WORDS: Final[dict[str, str]] = {"spouse": "spouse (配偶)", "child": "child (子女)", "parent": "parent (父母)"}


def _family_route(ctx: _Context, route: Route) -> bool | None:
    """The applicant follows a relative who qualifies by one of the routes the clause names (``follows``), decided
    on the relative's own facts; each relative the register links is a condition of its own. A spouse the
    register does not link cannot be ruled out (no department publishes marriages): then the route is not
    assessable rather than failed."""
    assert isinstance(route, FamilyRoute)
    params = route.parameters
    rule = ctx.rule
    assert isinstance(rule, SettlementRule)
    followed = [r for r in rule.routes if r.name in params.follows.value]
    wanted = params.relations.value
    relatives = [r for r in ctx.facts.relatives if r.relation in wanted]
    ctx.fact("relatives", [r.to_json() for r in relatives])
    outcomes: list[bool | None] = []
    if not relatives and any(r != "spouse" for r in wanted):
        words = ", ".join(_RELATION_WORDS[r] for r in wanted if r != "spouse")
        outcomes.append(
            ctx.condition(
                "family",
                False,
                f"no {words} linked in the register on {ctx.facts.as_of} (births name parents and children, "
                "households name them too)",
                route.clause,
                route.name,
            )
        )
    if "spouse" in wanted and not any(r.relation == "spouse" for r in relatives):
        outcomes.append(
            ctx.condition(
                "spouse_not_linked",
                None,
                "no spouse linked in the register (only a household names one): marriages are registered by civil "
                "affairs, which publishes no events here, so a spouse who qualifies cannot be ruled out",
                route.clause,
                route.name,
            )
        )
    home = ctx.facts.home
    for relative in relatives:
        theirs = relative.facts
        who = f"{_RELATION_WORDS[relative.relation]} {relative.citizen_id} (linked by {relative.basis})"
        parts: list[str] = []
        results: list[bool | None] = [theirs.life.alive]
        if not theirs.life.alive:
            parts.append("deceased")  # not when: the relative's own section
        if params.co_resident.value:
            together = home is not None and home == theirs.home
            results.append(together)
            if together:
                parts.append("lives at the same address")
            elif home is None:
                parts.append("the applicant has no residence or hukou address on record to share")
            else:
                parts.append("does not live at the applicant's address")
        if relative.relation == "parent" and params.unmarried_children.value:
            # The applicant follows a parent as a child: only an unmarried one does (未婚子女).
            married = _married(ctx.facts)
            results.append(not married)
            if married:
                parts.append("the applicant is married (a spouse in a household): only unmarried children follow")
        qualifies, how, _ = _qualifies(ctx, theirs, followed, params.settled_principal.value)
        results.append(qualifies)
        parts.append(how)
        met = _all(results)
        ctx.condition(f"{relative.relation}_qualifies", met, f"{who}: " + "; ".join(parts), route.clause, route.name)
        outcomes.append(met)
    if any(m is True for m in outcomes):
        return True
    return None if any(m is None for m in outcomes) else False


def _married(facts: Facts) -> bool:
    """What the register can tell of a marriage: a spouse in a household (one's own relation to its head, or a
    spouse linked there). Marriages are registered by civil affairs (民政), which publishes no events here."""
    own = facts.hukou.status == "registered" and facts.hukou.relationship == "spouse"
    return own or any(r.relation == "spouse" for r in facts.relatives)


def _qualifies(
    ctx: _Context, facts: Facts, routes: Sequence[Route], settled_counts: bool = False
) -> tuple[bool | None, str, _Context]:
    """Whether ``facts`` (a relative's, or the applicant's own) meet one of ``routes``, decided in a context of its
    own (returned, for the facts it read) so that nothing of it enters ``ctx``'s conditions; or, if the plan
    counts that, are settled already."""
    sub = _Context(ctx.policy, ctx.benefit, ctx.rule, facts)
    if settled_counts and facts.hukou.urban_in_city:
        return True, f"settled: hukou at an urban address in {ctx.city} since {facts.hukou.registered_on}", sub
    results = {route.name: _ROUTES[type(route)](sub, route) for route in routes}
    met = [name for name, result in results.items() if result is True]
    if met:
        return True, "qualifies by " + ", ".join(met), sub
    unknown = [name for name, result in results.items() if result is None]
    if unknown:
        return None, "qualifies by no route that could be assessed (" + ", ".join(unknown) + " not assessable)", sub
    return False, "qualifies by none of " + ", ".join(results), sub


_ROUTES: Final[dict[type, Callable[[_Context, Route], bool | None]]] = {
    ResidenceRoute: _residence_route,
    EmploymentRoute: _employment_route,
    GraduateRoute: _graduate_route,
    UnassessableRoute: _unassessable_route,
    CertificateRoute: _certificate_route,
    FamilyRoute: _family_route,
    ReturneeRoute: _returnee_route,
    VeteranRoute: _veteran_route,
    SpouseEmployedRoute: _spouse_employed_route,
}


@dataclass(frozen=True, slots=True)
class _Indicator:
    """One indicator of a points scheme: the points it gives, of how many, on what basis, by which clause."""

    name: str
    points: int
    maximum: int
    basis: str
    clause: Citation
    assumed: bool

    def row(self, ctx: _Context) -> dict[str, Any]:
        return {
            "indicator": self.name,
            "points": self.points,
            "max": self.maximum,
            "basis": self.basis,
            "clause": ctx.ref(self.clause),
            "assumed": self.assumed,
        }


def _points(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, PointsRule)
    p = rule.parameters
    facts = ctx.facts
    _alive(ctx)
    _hukou_outside(ctx, p.hukou_outside.value, rule.clause)
    _valid_permit(ctx, rule.clause)
    ctx.fact("insurance", {**facts.insurance.to_json([p.pension_scheme.value])})
    ctx.fact("residence", facts.residence)
    ctx.fact("education", facts.education)
    indicators = (
        _stable_employment(ctx.city, facts.insurance, p, rule.clause),
        _stable_residence(ctx.city, facts.residence, p, rule.clause),
        _home(ctx.city, facts.residence, p, rule.clause),
        _education_points(facts.education, p, rule.clause),
        _suburban_new_town(facts.residence, p, rule.suburban_clause),
    )
    breakdown = [i.row(ctx) for i in indicators]
    score = sum(i.points for i in indicators)
    threshold = p.threshold.value
    ctx.condition(
        "score",
        score >= threshold,
        f"score {score} " + (">=" if score >= threshold else "<") + f" threshold {threshold}",
        rule.clause,
    )
    quota = (
        f"Subject to the annual quota ({ctx.ref(rule.quota_clause)}: 「{rule.quota_clause.quote}」): "
        "reaching the threshold qualifies an application; admission depends on the year's plan."
    )
    return ctx.decide(score=score, breakdown=breakdown, notes=(quota, _voluntary(ctx, rule.voluntary)))


def _stable_employment(city: str, insurance: InsuranceFact, p: PointsParams, clause: Citation) -> _Indicator:
    months = insurance.months_in_city([p.pension_scheme.value])
    per, cap = p.pension_months_per_point.value, p.pension_points_max.value
    return _Indicator(
        "stable_employment",
        min(months // per, cap),
        cap,
        f"{months} months of {p.pension_scheme.value} contributions in {city}: 1 point per {per} months",
        clause,
        p.pension_months_per_point.assumed or p.pension_points_max.assumed,
    )


def _stable_residence(city: str, residence: ResidenceFact, p: PointsParams, clause: Citation) -> _Indicator:
    per, cap = p.residence_months_per_point.value, p.residence_points_max.value
    return _Indicator(
        "stable_residence",
        min(residence.continuous_months // per, cap),
        cap,
        f"{residence.continuous_months} whole months of continuous residence in {city}: 1 point per {per} months",
        clause,
        p.residence_months_per_point.assumed or p.residence_points_max.assumed,
    )


def _home(city: str, residence: ResidenceFact, p: PointsParams, clause: Citation) -> _Indicator:
    need_rent = p.rented_home_min_months.value
    if residence.in_city and residence.tenure == "owned":
        home, basis = p.owned_home_points.value, "owns the home registered as residence"
    elif residence.in_city and residence.tenure == "rented" and residence.months_at_address >= need_rent:
        home, basis = p.rented_home_points.value, f"rents the home, lived in for {residence.months_at_address} months"
    elif residence.in_city and residence.tenure == "rented":
        home, basis = 0, f"rents the home for {residence.months_at_address} months; rentals count from {need_rent}"
    else:
        home, basis = 0, f"no owned or rented home registered in {city} (tenure: {residence.tenure or 'none'})"
    return _Indicator(
        "home",
        home,
        max(p.owned_home_points.value, p.rented_home_points.value),
        basis,
        clause,
        p.owned_home_points.assumed or p.rented_home_points.assumed,
    )


def _education_points(education: EducationFact, p: PointsParams, clause: Citation) -> _Indicator:
    table = p.education_points.value
    highest = education.highest
    # The best-scoring graduation counts (a vocational diploma after a general one, whichever is higher).
    return _Indicator(
        "education",
        max((table.get(g.stage, 0) for g in education.graduations), default=0),
        max(table.values(), default=0),
        f"highest stage graduated: {highest.stage if highest else 'none on record'}",
        clause,
        p.education_points.assumed,
    )


def _suburban_new_town(residence: ResidenceFact, p: PointsParams, clause: Citation) -> _Indicator:
    suburban = residence.in_city and residence.region_code in p.suburban_districts.value
    return _Indicator(
        "suburban_new_town",
        p.suburban_points.value if suburban else 0,
        p.suburban_points.value,
        f"lives in {region_label(residence.region_code) or 'no registered residence'}"
        + (", a suburban new town (郊区新城)" if suburban else ", not a suburban new town"),
        clause,
        p.suburban_points.assumed or p.suburban_districts.assumed,
    )


def _registered_route(ctx: _Context, clause: Citation) -> bool:
    """Local hukou holders have these rights as registered residents; the plan extends them to permit holders."""
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    text = f"{_hukou_place(hukou)}: " + (
        f"a registered resident of {ctx.city}, entitled as such"
        if hukou.in_city
        else f"not a registered resident of {ctx.city}"
    )
    ctx.condition("hukou_in_city", hukou.in_city, text, clause, "registered_resident")
    ctx.routes.append(RouteOutcome("registered_resident", "hukou in the city", ctx.ref(clause), hukou.in_city))
    return hukou.in_city


def _permit_services(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, PermitServicesRule)
    _alive(ctx)
    _registered_route(ctx, rule.clause)
    met = _valid_permit(ctx, rule.clause, route="permit_holder")
    ctx.routes.append(RouteOutcome("permit_holder", "valid residence permit of the city", ctx.ref(rule.clause), met))
    services = "、".join(rule.parameters.services.value)
    return ctx.decide(notes=(f"Services given at once to permit holders: {services}.",))


def _permit_progressive(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, PermitProgressiveRule)
    p = rule.parameters
    _alive(ctx)
    _registered_route(ctx, rule.clause)
    route = "permit_holder"
    results: list[bool | None] = [_valid_permit(ctx, rule.clause, route=route)]
    residence = ctx.facts.residence
    ctx.fact("residence", residence)
    need = p.min_residence_months.value
    months = residence.continuous_months
    results.append(
        ctx.condition(
            "continuous_residence_months",
            months >= need,
            f"{months} whole months of continuous residence in {ctx.city}; needs {need}",
            rule.clause,
            route,
        )
    )
    insurance = ctx.facts.insurance
    ctx.fact("insurance", insurance.to_json(p.insurance_schemes.value))
    need = p.min_insurance_months.value
    months = insurance.months_in_city(p.insurance_schemes.value)
    results.append(
        ctx.condition(
            "insurance_months",
            months >= need,
            f"{months} months of social-insurance contributions in {ctx.city} (the longest scheme); needs {need}",
            rule.clause,
            route,
        )
    )
    ctx.routes.append(
        RouteOutcome(
            route, "permit holder with enough years of residence and insurance", ctx.ref(rule.clause), _all(results)
        )
    )
    notes = (rule.not_assessed,) if rule.not_assessed else ()
    return ctx.decide(notes=notes)


def _collective_household(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, CollectiveHouseholdRule)
    p = rule.parameters
    settlement = ctx.policy.benefits[p.settlement_benefit.value]
    assert isinstance(settlement, SettlementRule)  # the policy checks it on load
    _alive(ctx)
    _hukou_outside(ctx, settlement.parameters.hukou_outside.value, settlement.clause)
    routes = [r for r in settlement.routes if not isinstance(r, FamilyRoute)]
    met, how, sub = _qualifies(ctx, ctx.facts, routes)
    ctx.used.update(sub.used)  # the applicant's own facts the routes read
    ctx.condition("qualifies_for_settlement", met, f"{settlement.title}: {how}", settlement.clause)
    residence = ctx.facts.residence
    ctx.fact("residence", residence)
    home = (residence.tenure or "other") if residence.registered and residence.in_city else "none"
    homes = p.homes.value
    words = "no residence registered in the city" if home == "none" else f"the home registered in the city: {home}"
    ctx.condition("home", home in homes, f"{words}; leads to a collective household: {', '.join(homes)}", rule.clause)
    return ctx.decide(notes=(_voluntary(ctx, settlement.voluntary),))


def _collective_transfer(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, CollectiveTransferRule)
    _alive(ctx)
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    collective = hukou.in_city and hukou.household_type == "collective"
    kind = f"a {hukou.household_type} household" if hukou.household_type else "no household"
    ctx.condition(
        "hukou_in_collective_household",
        collective,
        f"{_hukou_place(hukou)}, in {kind}" + ("" if collective else f"; needs a collective household in {ctx.city}"),
        rule.clause,
    )
    if rule.parameters.left_the_unit.value:
        employment = ctx.facts.employment
        ctx.fact("employment", employment)
        jobs = [j for j in employment.jobs if j.in_city]
        text = (
            f"no employment in force in {ctx.city} on {ctx.facts.as_of}"
            if not jobs
            else "still employed in the city: " + "; ".join(j.employer_name for j in jobs)
        )
        ctx.condition("left_the_unit", not jobs, text, rule.clause)
    for route in rule.routes:
        ctx.route(route, _ROUTES[type(route)](ctx, route))
    return ctx.decide(notes=(f"Without one ({ctx.ref(rule.stays)}): 「{rule.stays.quote}」",))


def _blue_seal(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, BlueSealRule)
    _alive(ctx)
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    blue = hukou.in_city and hukou.legacy_nature == "blue_seal"
    nature = f"recorded as {hukou.legacy_nature}" if hukou.legacy_nature else "no earlier nature recorded"
    ctx.condition("blue_seal_hukou", blue, f"{_hukou_place(hukou)}, {nature}", rule.clause)
    return ctx.decide(notes=(rule.settlement_note,))


def _no_hukou(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, NoHukouRule)
    _alive(ctx)
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    if hukou.status == "registered":
        ctx.condition("no_hukou", False, f"{_hukou_place(hukou)}: not a person without hukou", rule.clause)
    else:
        ctx.condition("no_hukou", None, f"{_hukou_place(hukou)}; {rule.missing}", rule.clause)
    return ctx.decide()


def _local_exam(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, LocalExamRule)
    p = rule.parameters
    _alive(ctx)
    education = ctx.facts.education
    ctx.fact("education", education)
    stage = p.stage.value
    at_school = education.enrolled_in_city and education.enrolled_stage == stage
    if education.enrolled_stage is None:
        text = f"not at school on {ctx.facts.as_of}"
    else:
        text = f"at a {education.enrolled_stage} school in {region_label(education.enrolled_region)}"
    ctx.condition("at_school_in_city", at_school, f"{text}; needs {stage} in {ctx.city}", rule.clause)
    if p.min_school_months is not None:
        months, need = education.school_months_in_city, p.min_school_months.value
        since = f" since {education.schooling_since}" if education.schooling_since else ""
        ctx.condition(
            "school_months_in_city",
            months >= need,
            f"{months} whole months of continuous schooling in {ctx.city}{since}; needs {need}",
            rule.clause,
        )
    _child_of_the_city(ctx, rule.clause, bool(p.parent_residence and p.parent_residence.value))
    return ctx.decide()


def _minimum_living(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, MinimumLivingRule)
    p = rule.parameters
    _alive(ctx)
    hukou = ctx.facts.hukou
    ctx.fact("hukou", hukou)
    if hukou.status == "registered":
        rural: bool | None = not hukou.urban or hukou.legacy_nature == "agricultural"
        words = f"{_hukou_place(hukou)}" + (": a rural hukou" if rural else ": not a rural hukou")
    else:
        rural, words = None, f"{_hukou_place(hukou)}: whether it is rural is not known"
    ctx.condition("rural_hukou", rural, words, rule.clause)
    residence = ctx.facts.residence
    ctx.fact("residence", residence)
    in_town = residence.in_city and bool(residence.urban)
    place = (
        f"residence registered in {region_label(residence.region_code)} ("
        + ("urban" if residence.urban else "rural")
        + " address)"
        if residence.registered
        else "no residence registration in force"
    )
    ctx.condition("lives_in_town", in_town, f"{place}; needs a town (城镇) in {ctx.city}", rule.clause)
    months, need = residence.continuous_months, p.min_residence_months.value
    ctx.condition(
        "continuous_residence_months",
        months >= need,
        f"{months} whole months of continuous residence in {ctx.city}; needs {need}",
        rule.clause,
    )
    worker = _employed(ctx, rule.clause, "migrant_worker_family")
    if not worker:
        # 「農民工家庭」: the family of a migrant worker; a spouse or parent the register links who works here.
        earners = [
            r
            for r in ctx.facts.relatives
            if r.relation in ("spouse", "parent")
            and r.facts.life.alive
            and any(j.in_city for j in r.facts.employment.jobs)
        ]
        if earners:
            ctx.fact("relatives", [r.to_json() for r in earners])
            worker = bool(
                ctx.condition(
                    "family_member_employed",
                    True,
                    "; ".join(f"{r.relation} {r.citizen_id} works in {ctx.city}" for r in earners),
                    rule.clause,
                    "migrant_worker_family",
                )
            )
    ctx.routes.append(
        RouteOutcome("migrant_worker_family", "a migrant worker's family (农民工家庭)", ctx.ref(rule.clause), worker)
    )
    insurance = ctx.facts.insurance
    ctx.fact("insurance", insurance.to_json(p.insurance_schemes.value))
    paid, need = insurance.months_in_city(p.insurance_schemes.value), p.min_insurance_months.value
    insured = bool(
        ctx.condition(
            "insurance_months",
            paid >= need,
            f"{paid} months of social-insurance contributions in {ctx.city} (the longest scheme); needs {need}",
            rule.rural_clause,
            "insured_rural_resident",
        )
    )
    ctx.routes.append(
        RouteOutcome("insured_rural_resident", "another rural resident, insured", ctx.ref(rule.rural_clause), insured)
    )
    ctx.condition(
        "not_assessable",
        None,
        "land-requisitioned farmers (被征地农民): a requisition is recorded by natural resources, not by any event",
        rule.clause,
        "land_requisitioned",
    )
    ctx.routes.append(RouteOutcome("land_requisitioned", "a land-requisitioned farmer", ctx.ref(rule.clause), None))
    return ctx.decide(notes=(rule.not_assessed,))


def _not_assessable(ctx: _Context) -> Decision:
    rule = ctx.rule
    assert isinstance(rule, NotAssessableRule)
    _alive(ctx)
    if rule.parameters.requires_permit is not None and rule.parameters.requires_permit.value:
        _valid_permit(ctx, rule.clause)
    ctx.condition("not_assessable", None, f"{rule.title}: {rule.missing}; not guessed", rule.clause)
    return ctx.decide()


_HANDLERS: Final[dict[type, Callable[[_Context], Decision]]] = {
    ResidencePermitRule: _residence_permit,
    CompulsoryEducationRule: _compulsory_education,
    SettlementRule: _settlement,
    PointsRule: _points,
    PermitServicesRule: _permit_services,
    PermitProgressiveRule: _permit_progressive,
    CollectiveHouseholdRule: _collective_household,
    CollectiveTransferRule: _collective_transfer,
    BlueSealRule: _blue_seal,
    NoHukouRule: _no_hukou,
    LocalExamRule: _local_exam,
    MinimumLivingRule: _minimum_living,
    NotAssessableRule: _not_assessable,
}
