"""Policies as data: one TOML file per municipal plan, validated into typed rules.

A policy file (``projections/eligibility/policies/<policy>.toml``) names the city's region-code prefixes and,
per benefit, the *kind* of rule that decides it, the clause of the seed plan it comes from (with the plan's own
words, so an operator can check it), and its parameters. Every parameter carries where its number comes from:
``source`` when a text states it, or ``assumed = true`` with a ``note`` when the plan names the indicator but no
number — the default is then ours, visible, and meant to be replaced by the city's implementing rules.

The rule kinds are the evaluator's vocabulary (``projections.eligibility.evaluator``):

* ``residence_permit`` — hukou elsewhere, living in the city continuously for N months on a recognised basis;
* ``compulsory_education`` — a child of school age with a hukou in the city or a parent holding a valid permit;
* ``settlement`` — settling (落户) through any one of several *routes* (a residence, insured employment,
  a diploma, a skill certificate; or a route the v1 events cannot assess, which the decision says so);
* ``points`` — points-based settlement on a valid permit, scored indicator by indicator against a threshold;
* ``permit_services`` — the services a valid permit gives at once;
* ``permit_progressive`` — services a permit gives after years of residence and of social insurance.

Loading is the only I/O here (reading package data or an operator's directory); everything else is pure.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from events.education import Stage
from events.public_security import ResidenceBasis, Tenure
from events.social_security import Scheme

__all__ = [
    "BENEFIT_RULES",
    "POLICY_IDS",
    "Benefit",
    "BlueSealRule",
    "CertificateRoute",
    "Citation",
    "CollectiveHouseholdRule",
    "CollectiveTransferRule",
    "CompulsoryEducationRule",
    "EmploymentRoute",
    "FamilyRoute",
    "GraduateRoute",
    "InForce",
    "LocalExamRule",
    "MinimumLivingRule",
    "NoHukouRule",
    "NotAssessableRule",
    "Param",
    "PermitProgressiveRule",
    "PermitServicesRule",
    "PointsRule",
    "Policy",
    "PolicyError",
    "ResidencePermitRule",
    "ResidenceRoute",
    "ReturneeRoute",
    "Route",
    "Rule",
    "SettlementRule",
    "SpouseEmployedRoute",
    "UnassessableRoute",
    "UnknownPolicyError",
    "VeteranRoute",
    "load_policy",
    "parse_policy",
    "policy_ids",
    "routes_of",
]

POLICY_IDS: Final = ("xining-2015", "nantong-2020", "chengdu-2017", "feicheng-2016", "liaoyuan-2015")
"""The policies shipped with renkou (CONTRACT §7), one per seed plan."""

_PACKAGE: Final = "projections.eligibility"
_FOLDER: Final = "policies"

T = TypeVar("T")


class PolicyError(ValueError):
    """A policy cannot be found or is malformed; the message names the file and every problem."""


class UnknownPolicyError(PolicyError):
    """No policy of that name is available (the message lists those that are)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(_Model):
    """Where a rule comes from: a numbered clause of the seed plan (or of a national text) and its words.

    ``seed`` defaults to the policy's own seed file; a clause of another text (the national 居住证暂行条例)
    names that ``document`` instead and has no seed.
    """

    number: Annotated[str, Field(min_length=1, max_length=40)]
    """The clause as the plan numbers it, e.g. ``(4)``, ``2(1)1``, ``annex (5)``, ``3(1)3``."""
    quote: Annotated[str, Field(min_length=2, max_length=200)]
    """A short phrase of the original Chinese, verbatim, so an operator can find and check it."""
    seed: str | None = None
    document: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Citation:
        if self.seed is not None and self.document is not None:
            raise ValueError("a citation names either a seed file or another document, not both")
        return self

    def ref(self, policy: str) -> str:
        """``nantong-2020 (4)``, or ``居住证暂行条例 第二条`` for a national text."""
        if self.document is not None:
            return f"{self.document} {self.number}"
        return f"{policy} {self.number}"

    def to_json(self, policy: str) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref(policy), "clause": self.number, "quote": self.quote}
        if self.document is not None:
            out["document"] = self.document
        else:
            out["policy"] = policy
            out["seed"] = self.seed
        return out


class Param(_Model, Generic[T]):
    """One parameter of a rule: its value and where that value comes from.

    Either ``source`` says which text states the number, or ``assumed`` is true and ``note`` explains the
    default (the plan names the indicator, not the number) so an operator can see and replace it.
    """

    value: T
    assumed: bool = False
    source: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _provenance(self) -> Param[T]:
        if self.assumed and not self.note:
            raise ValueError("an assumed parameter needs a note saying why this default was chosen")
        if not self.assumed and not self.source:
            raise ValueError("a parameter that is not assumed needs the source that states it")
        return self

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _plain(self.value), "assumed": self.assumed}
        if self.source:
            out["source"] = self.source
        if self.note:
            out["note"] = self.note
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    return value


class _Params(_Model):
    def to_json(self) -> dict[str, Any]:
        """Each parameter (those left out are absent) with its value and provenance."""
        return _params_json(self)


HukouScope = Literal["city", "urban"]
"""Who may settle: people whose hukou is not in the city at all (``city``), or also the city's own residents
whose hukou is at a rural address (``urban``: not yet registered at an urban address in the city)."""


# --- routes of a settlement rule -----------------------------------------------------------------------------


class _Route(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    """Stable identifier of the route within its benefit (``owned_residence``)."""
    title: Annotated[str, Field(min_length=1, max_length=120)]
    clause: Citation


class ResidenceParams(_Params):
    tenures: Param[tuple[Tenure, ...]]
    """Which tenures make "a legal stable residence" (合法稳定住所)."""
    urban_only: Param[bool]
    """Whether the residence must be at an urban address (城区、建制镇)."""
    min_months: Param[int] | None = None
    """Months lived at that address, at least (none: no duration asked)."""
    insurance_schemes: Param[tuple[Scheme, ...]] | None = None
    """If set: one of these schemes must be active in the city as well."""


class ResidenceRoute(_Route):
    """A legal stable residence in the city (owned, or rented, ...)."""

    kind: Literal["residence"]
    parameters: ResidenceParams


class EmploymentParams(_Params):
    insurance_schemes: Param[tuple[Scheme, ...]]
    """Employment counts when one of these schemes is active in the city."""


class EmploymentRoute(_Route):
    """Legal stable employment in the city with social insurance there."""

    kind: Literal["employment"]
    parameters: EmploymentParams


class GraduateParams(_Params):
    stages: Param[tuple[Stage, ...]]
    """A graduation at one of these stages qualifies."""
    from_city: Param[bool]
    """The graduate must come from the city (生源): the ID's division code or an earlier hukou there."""
    employed_in_city: Param[bool]
    """The graduate must be employed in the city (returns to work there)."""
    without_employer: Param[bool] | None = None
    """The graduate must have no employer yet (未落实就业单位): no registered employment in force anywhere."""
    while_enrolled: Param[bool] | None = None
    """A student still enrolled at one of ``stages`` counts as well as a graduate (在校期间或者毕业后)."""
    rural_origin: Param[bool] | None = None
    """The student must come from a rural hukou (农村籍): an earlier or the current hukou at a rural address, or
    one recorded as agricultural before unification."""


class GraduateRoute(_Route):
    """A diploma (and, where the plan asks, origin in the city and a job there)."""

    kind: Literal["graduate"]
    parameters: GraduateParams


class CertificateRoute(_Route):
    """A skill certificate (``training.completed`` with a certificate number)."""

    kind: Literal["skill_certificate"]


class UnassessableRoute(_Route):
    """A route the v1 events cannot assess (business licences, study abroad): the decision says so."""

    kind: Literal["not_assessable"]
    missing: Annotated[str, Field(min_length=1, max_length=300)]
    """What would be needed and no v1 event records."""


class ReturneeParams(_Params):
    employed_in_city: Param[bool]
    """The returnee works in the city (返乡就业); starting a business (创业) is recorded by no event."""


class ReturneeRoute(_Route):
    """Someone from the city (the ID's division or an earlier hukou there) who returns to work there."""

    kind: Literal["returnee"]
    parameters: ReturneeParams


class VeteranParams(_Params):
    employed_in_city: Param[bool]
    """Placed with an employer in the city (正式安置单位): employment registered there."""
    without_employer: Param[bool] | None = None
    """No employer yet (未落实就业单位): no registered employment in force anywhere."""
    home_in_city: Param[bool] | None = None
    """A home in the city to settle at (原籍、父母、配偶户籍所在地或居住地): from the city, living there, or a parent
    or spouse the register links with a hukou there."""


class VeteranRoute(_Route):
    """A discharged or transferred serviceman (复退、转业军人): the hukou was cancelled for military service and
    not registered again."""

    kind: Literal["veteran"]
    parameters: VeteranParams


class SpouseEmployedRoute(_Route):
    """The spouse the register links works in the city (户口落入配偶所在单位)."""

    kind: Literal["spouse_employed"]


FamilyRelation = Literal["spouse", "child", "parent"]


class FamilyParams(_Params):
    follows: Param[tuple[str, ...]]
    """The routes of the same clause by which the relative followed qualifies (the others are other clauses')."""
    relations: Param[tuple[FamilyRelation, ...]]
    """Whom the applicant may follow: their spouse, child or parent who qualifies (配偶、子女、父母)."""
    co_resident: Param[bool]
    """The applicant must live with that relative (共同居住生活 / 相互居住): the same address on ``as_of``."""
    unmarried_children: Param[bool]
    """Only an unmarried child follows a parent (未婚子女): a child the register shows married does not."""
    settled_principal: Param[bool]
    """A relative whose hukou is already at an urban address in the city counts as qualifying (the family
    joins a settled resident), besides one who meets another route of the rule."""


class FamilyRoute(_Route):
    """Family follows (本人及其……配偶、未婚子女、父母): the applicant lives with a spouse, parent or child who
    qualifies by another route of the same rule; that relative's routes are decided on their own facts."""

    kind: Literal["family"]
    parameters: FamilyParams


Route: TypeAlias = Annotated[
    ResidenceRoute
    | EmploymentRoute
    | GraduateRoute
    | CertificateRoute
    | UnassessableRoute
    | FamilyRoute
    | ReturneeRoute
    | VeteranRoute
    | SpouseEmployedRoute,
    Field(discriminator="kind"),
]


def _params_json(params: _Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(params).model_fields:
        value = getattr(params, name)
        if value is not None:
            out[name] = value.to_json()
    return out


# --- rules ---------------------------------------------------------------------------------------------------


class _Rule(_Model):
    title: Annotated[str, Field(min_length=1, max_length=160)]
    clause: Citation


class ResidencePermitParams(_Params):
    min_months: Param[int]
    bases: Param[tuple[ResidenceBasis, ...]]
    in_town: Param[bool] | None = None
    """The residence must be in a town (城镇: an urban address, 城区 or 建制镇), where the plan says so."""


class ResidencePermitRule(_Rule):
    """居住证: hukou elsewhere, ≥ N months of continuous residence in the city, a recognised basis."""

    rule: Literal["residence_permit"]
    conditions_clause: Citation | None = None
    """Where the months and bases come from, when the city's own clause does not state them."""
    parameters: ResidencePermitParams


class CompulsoryEducationParams(_Params):
    min_age: Param[int]
    max_age: Param[int]
    parent_residence: Param[bool] | None = None
    """A parent registered as living in the city (流动人口) counts, not only one holding a valid permit."""


class CompulsoryEducationRule(_Rule):
    """义务教育 for a child: hukou in the city, or a parent's valid residence permit there."""

    rule: Literal["compulsory_education"]
    parameters: CompulsoryEducationParams

    @model_validator(mode="after")
    def _ages(self) -> CompulsoryEducationRule:
        if self.parameters.min_age.value > self.parameters.max_age.value:
            raise ValueError("min_age must not exceed max_age")
        return self


class SettlementParams(_Params):
    hukou_outside: Param[HukouScope]


class SettlementRule(_Rule):
    """落户 through any one of ``routes``; settlement is always voluntary (``voluntary`` cites the plan)."""

    rule: Literal["settlement"]
    voluntary: Citation
    parameters: SettlementParams
    routes: Annotated[tuple[Route, ...], Field(min_length=1)]

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        names = [r.name for r in routes]
        if len(set(names)) != len(names):
            raise ValueError(f"route names must be unique, got {names}")
        others = {r.name for r in routes if not isinstance(r, FamilyRoute)}
        for route in routes:
            if isinstance(route, FamilyRoute):
                unknown = [n for n in route.parameters.follows.value if n not in others]
                if unknown or not route.parameters.follows.value:
                    raise ValueError(
                        f"family route {route.name!r} must follow other routes of the rule, got {unknown or 'none'}"
                    )
        return routes


class PointsParams(_Params):
    hukou_outside: Param[HukouScope]
    threshold: Param[int]
    pension_scheme: Param[Scheme]
    pension_months_per_point: Param[int]
    pension_points_max: Param[int]
    residence_months_per_point: Param[int]
    residence_points_max: Param[int]
    owned_home_points: Param[int]
    rented_home_points: Param[int]
    rented_home_min_months: Param[int]
    education_points: Param[dict[Stage, int]]
    suburban_points: Param[int]
    suburban_districts: Param[tuple[str, ...]]

    @field_validator("suburban_districts")
    @classmethod
    def _codes(cls, param: Param[tuple[str, ...]]) -> Param[tuple[str, ...]]:
        bad = [c for c in param.value if len(c) != 6 or not c.isdigit()]
        if bad:
            raise ValueError(f"suburban_districts must be 6-digit region codes, got {bad}")
        return param


class PointsRule(_Rule):
    """积分入户: a valid permit, a score from the indicators, the threshold, and the annual quota."""

    rule: Literal["points"]
    quota_clause: Citation
    suburban_clause: Citation
    voluntary: Citation
    parameters: PointsParams


class PermitServicesParams(_Params):
    services: Param[tuple[str, ...]]


class PermitServicesRule(_Rule):
    """What a valid permit gives at once (the registered population has it by hukou)."""

    rule: Literal["permit_services"]
    parameters: PermitServicesParams


class PermitProgressiveParams(_Params):
    min_residence_months: Param[int]
    min_insurance_months: Param[int]
    insurance_schemes: Param[tuple[Scheme, ...]]


class PermitProgressiveRule(_Rule):
    """What a permit gives after years of continuous residence and of social insurance in the city."""

    rule: Literal["permit_progressive"]
    parameters: PermitProgressiveParams
    not_assessed: str | None = None
    """What the benefit also asks that the backbone does not know (means tests), stated in every decision."""


class NoParams(_Params):
    """A rule without parameters."""


HomeKind = Literal["owned", "rented", "employer", "other", "none"]
"""The tenure of the residence registered in the city, or ``none`` without one."""


class CollectiveHouseholdParams(_Params):
    settlement_benefit: Param[str]
    """The settlement benefit whose routes (family routes aside) the person must meet."""
    homes: Param[tuple[HomeKind, ...]]
    """Whose hukou goes to a collective household: the homes (tenures) that lead there."""


class CollectiveHouseholdRule(_Rule):
    """Settling in a collective household (集体户: a community's, an employer's, a labour market's) for someone
    who qualifies to settle but has no home of their own to register the hukou at."""

    rule: Literal["collective_household"]
    parameters: CollectiveHouseholdParams


class CollectiveTransferParams(_Params):
    left_the_unit: Param[bool]
    """No employment in force in the city: the unit whose collective household holds the hukou was left."""


class CollectiveTransferRule(_Rule):
    """Moving a hukou out of a unit's collective household after leaving the unit (下岗、辞退、辞职、转产、破产, or a
    空挂 hukou) to a fixed home or the spouse's unit: any one of ``routes``; otherwise it stays with the unit."""

    rule: Literal["collective_transfer"]
    parameters: CollectiveTransferParams
    routes: Annotated[tuple[Route, ...], Field(min_length=1)]
    stays: Citation
    """What happens without a route (户口仍由原户口单位管理)."""

    @field_validator("routes")
    @classmethod
    def _no_family(cls, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        if any(isinstance(r, FamilyRoute) for r in routes):
            raise ValueError("a family route belongs to a settlement rule")
        return routes


class BlueSealRule(_Rule):
    """A blue-seal hukou (蓝印户口) ends: its holder settles if the settlement conditions are met, else exchanges it
    for a residence permit (the clause states both ways)."""

    rule: Literal["blue_seal"]
    parameters: NoParams = NoParams()
    settlement_note: str
    """How the settlement conditions are decided (a plan without conditions of its own says so)."""


class NoHukouRule(_Rule):
    """Registering someone with no hukou at all (无户口人员), by the categories of 国办发〔2015〕96号."""

    rule: Literal["no_hukou"]
    parameters: NoParams = NoParams()
    missing: Annotated[str, Field(min_length=1, max_length=300)]


class LocalExamParams(_Params):
    stage: Param[Stage]
    """The stage the child is at school in, on the way to the examination."""
    min_school_months: Param[int] | None = None
    """Months of continuous schooling in the city, at least (none: no years asked)."""
    parent_residence: Param[bool] | None = None
    """A parent registered as living in the city (流动人口) counts, not only one holding a valid permit."""


class LocalExamRule(_Rule):
    """Sitting the 中考 / 高考 in the city: hukou there, or a parent's valid permit, and years of local schooling."""

    rule: Literal["local_exam"]
    parameters: LocalExamParams


class MinimumLivingParams(_Params):
    min_residence_months: Param[int]
    min_insurance_months: Param[int]
    insurance_schemes: Param[tuple[Scheme, ...]]


class MinimumLivingRule(_Rule):
    """Urban minimum living guarantee (城镇低保) for rural people long resident in town: a migrant worker's family
    (``clause``), or another rural resident also insured for years (``rural_clause``); land-requisitioned farmers
    are named too, but no event records a requisition. The means test is not assessed."""

    rule: Literal["minimum_living"]
    parameters: MinimumLivingParams
    rural_clause: Citation
    not_assessed: str


class NotAssessableParams(_Params):
    requires_permit: Param[bool] | None = None
    """What the clause does state: a valid residence permit of the city (without one the answer is a plain no)."""


class NotAssessableRule(_Rule):
    """A benefit no event can decide: every decision says what would be needed and guesses nothing (only what
    the clause does state, ``requires_permit``, can make it a plain no)."""

    rule: Literal["not_assessable"]
    parameters: NotAssessableParams = NotAssessableParams()
    missing: Annotated[str, Field(min_length=1, max_length=300)]


Rule: TypeAlias = Annotated[
    ResidencePermitRule
    | CompulsoryEducationRule
    | SettlementRule
    | PointsRule
    | PermitServicesRule
    | PermitProgressiveRule
    | CollectiveHouseholdRule
    | CollectiveTransferRule
    | BlueSealRule
    | NoHukouRule
    | LocalExamRule
    | MinimumLivingRule
    | NotAssessableRule,
    Field(discriminator="rule"),
]

Benefit = str
BENEFIT_RULES: Final = {
    "residence_permit": "residence_permit",
    "compulsory_education": "compulsory_education",
}
"""Benefits every policy must define, with the rule kind each must use."""


class InForce(_Model):
    """When the plan applies: from ``start`` through ``end`` (inclusive business dates in China). Without ``end``
    the plan states no expiry (``open_note`` says so, in the plan's words where it has any). A decision for a day
    outside says the plan was not, or no longer, in force (the evaluator's ``in_force`` condition)."""

    start: Param[date]
    end: Param[date] | None = None
    clause: Citation | None = None
    open_note: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> InForce:
        if self.end is not None and self.end.value < self.start.value:
            raise ValueError(f"in_force ends ({self.end.value}) before it starts ({self.start.value})")
        if self.end is None and not self.open_note:
            raise ValueError("an in_force without an end needs an open_note saying the plan states none")
        return self

    def covers(self, day: date) -> bool:
        return self.start.value <= day and (self.end is None or day <= self.end.value)

    def to_json(self, policy: str) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start.to_json(), "end": self.end.to_json() if self.end else None}
        if self.clause is not None:
            out["clause"] = self.clause.to_json(policy)
        if self.open_note:
            out["open_note"] = self.open_note
        return out


class Policy(_Model):
    """One city's plan as data: where the city is, and how each benefit is decided."""

    policy: Annotated[str, Field(pattern=r"^[a-z]+-[0-9]{4}$")]
    city: str
    city_en: str
    province: str
    document: str
    """The plan's document number (文号)."""
    title: str
    seed: str
    """The seed file the clauses are quoted from."""
    region_prefixes: Annotated[tuple[str, ...], Field(min_length=1)]
    """Region codes "in the city" start with one of these (GB/T 2260 codes of the city and its predecessors)."""
    region_note: str | None = None
    in_force: InForce | None = None
    """When the plan applies (every packaged policy states it; an operator's copy may leave it out)."""
    benefits: dict[Benefit, Rule]

    @property
    def needs_relatives(self) -> bool:
        """Whether a rule looks at the resident's relatives (family follows, the spouse's unit, a veteran's home, a
        migrant worker's family)."""
        return any(isinstance(rule, MinimumLivingRule) for rule in self.benefits.values()) or any(
            isinstance(route, FamilyRoute | SpouseEmployedRoute)
            or (isinstance(route, VeteranRoute) and route.parameters.home_in_city is not None)
            for rule in self.benefits.values()
            for route in routes_of(rule)
        )

    @field_validator("region_prefixes")
    @classmethod
    def _prefixes(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in prefixes if not p.isdigit() or len(p) not in (2, 4, 6)]
        if bad:
            raise ValueError(f"region prefixes must be 2, 4 or 6 digits, got {bad}")
        return prefixes

    @field_validator("benefits")
    @classmethod
    def _benefit_names(cls, benefits: dict[Benefit, Rule]) -> dict[Benefit, Rule]:
        for name in benefits:
            if not name.replace("_", "").isalnum() or not name[:1].isalpha() or not name.islower():
                raise ValueError(f"benefit names are lower-case identifiers, got {name!r}")
        for name, kind in BENEFIT_RULES.items():
            if name not in benefits:
                raise ValueError(f"every policy defines the benefit {name!r}")
            if benefits[name].rule != kind:
                raise ValueError(f"the benefit {name!r} must use the rule {kind!r}")
        return benefits

    @model_validator(mode="after")
    def _collective_households_name_a_settlement(self) -> Policy:
        for name, rule in self.benefits.items():
            if isinstance(rule, CollectiveHouseholdRule):
                target = self.benefits.get(rule.parameters.settlement_benefit.value)
                if not isinstance(target, SettlementRule):
                    raise ValueError(f"{name}: settlement_benefit must name a settlement benefit of this policy")
        return self

    @model_validator(mode="after")
    def _seed_everywhere(self) -> Policy:
        # Citations without a seed or document quote the policy's own seed; fill it in so every decision can
        # name the file its clause comes from.
        fixed: dict[Benefit, Rule] = {}
        for name, rule in self.benefits.items():
            fixed[name] = _with_seed(rule, self.seed)
        object.__setattr__(self, "benefits", fixed)
        return self

    def in_city(self, region_code: str | None) -> bool:
        """Whether a 6-digit region code lies in the city."""
        return region_code is not None and region_code.startswith(self.region_prefixes)

    def citations(self) -> Iterator[tuple[str, Citation]]:
        """Every citation of the policy, with where it is used (``benefit.field``), for checks and docs."""
        for name, rule in self.benefits.items():
            for field_name, value in rule:
                if isinstance(value, Citation):
                    yield f"{name}.{field_name}", value
            for route in routes_of(rule):
                yield f"{name}.routes.{route.name}", route.clause

    def parameters(self) -> Iterator[tuple[str, Param[Any]]]:
        """Every parameter of the policy with its path (``benefit.name`` or ``benefit.route.name``)."""
        for name, rule in self.benefits.items():
            yield from _walk_params(name, rule.parameters)
            for route in routes_of(rule):
                params = getattr(route, "parameters", None)
                if params is not None:
                    yield from _walk_params(f"{name}.{route.name}", params)


def routes_of(rule: Rule) -> tuple[Route, ...]:
    """The routes of a rule that has them (settlement, collective transfer, minimum living), else none."""
    routes: tuple[Route, ...] = getattr(rule, "routes", ())
    return routes


def _walk_params(prefix: str, params: _Params) -> Iterator[tuple[str, Param[Any]]]:
    for field_name in type(params).model_fields:
        value = getattr(params, field_name)
        if isinstance(value, Param):
            yield f"{prefix}.{field_name}", value


def _cite(citation: Citation, seed: str) -> Citation:
    if citation.seed is None and citation.document is None:
        return citation.model_copy(update={"seed": seed})
    return citation


def _with_seed(model: Any, seed: str) -> Any:
    updates: dict[str, Any] = {}
    for field_name, value in model:
        if isinstance(value, Citation):
            updates[field_name] = _cite(value, seed)
        elif isinstance(value, tuple) and value and isinstance(value[0], _Route):
            updates[field_name] = tuple(_with_seed(route, seed) for route in value)
    return model.model_copy(update=updates) if updates else model


# --- loading -------------------------------------------------------------------------------------------------


def policy_ids(directory: Path | None = None) -> list[str]:
    """The policies available (the package's, or those in ``directory``), sorted."""
    if directory is not None:
        return sorted(p.stem for p in directory.glob("*.toml"))
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(_PACKAGE).joinpath(_FOLDER).iterdir()
        if entry.name.endswith(".toml")
    )


def parse_policy(text: str, origin: str = "<policy>") -> Policy:
    """A policy from TOML text; ``PolicyError`` naming ``origin`` and every problem otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{origin}: not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'policy'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"{origin}: {problems}") from None


def load_policy(policy_id: str, directory: Path | None = None) -> Policy:
    """The policy ``policy_id`` from the package data, or from ``directory`` (an operator's edited copies).

    Raises ``PolicyError`` for an unknown policy (naming those available) or a malformed file.
    """
    if directory is None:
        return _packaged(policy_id)
    path = directory / f"{policy_id}.toml"
    if not _safe_id(policy_id) or not path.is_file():
        raise UnknownPolicyError(
            f"unknown policy {policy_id!r}; available: {', '.join(policy_ids(directory)) or 'none'}"
        )
    return _checked(parse_policy(path.read_text(encoding="utf-8"), str(path)), policy_id, str(path))


def _safe_id(policy_id: str) -> bool:
    # ASCII letters, digits and "-" only: the name becomes a file name.
    return 0 < len(policy_id) <= 40 and all(c.isascii() and (c.isalnum() or c == "-") for c in policy_id)


def _checked(policy: Policy, policy_id: str, origin: str) -> Policy:
    if policy.policy != policy_id:
        raise PolicyError(f"{origin}: declares policy {policy.policy!r}, expected {policy_id!r}")
    return policy


@cache
def _packaged(policy_id: str) -> Policy:
    if not _safe_id(policy_id) or policy_id not in policy_ids():
        raise UnknownPolicyError(f"unknown policy {policy_id!r}; available: {', '.join(policy_ids())}")
    resource = resources.files(_PACKAGE).joinpath(_FOLDER, f"{policy_id}.toml")
    return _checked(parse_policy(resource.read_text(encoding="utf-8"), f"{policy_id}.toml"), policy_id, policy_id)
