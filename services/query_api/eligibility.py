"""``GET /v1/residents/{citizen_id}/eligibility?policy=…&as_of=…`` — the query API's eligibility endpoint.

A FastAPI router for the query API (``services.query_api.app`` includes it). It follows the query API's order:
authenticate (401/400/403, ``services.query_api.auth``) → require the ``eligibility`` section of the grant (403)
→ validate the input (422) → decide from the archive → record the read in the access log and commit (503 if
that fails) → answer. Deciding reads the resident's events from every department and, for the education
rule, the parents' permits: the access-log entry is written for the resident *and* for each parent whose
facts the answer shows, before anything leaves.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from events.bounds import EARLIEST_DATE
from projections.eligibility import POLICY_IDS, UnknownPolicyError, policy_ids
from services.clock import today_in_china
from services.query_api.context import context_of
from services.query_api.errors import ApiError, citizen_id_param, responses
from services.query_api.routes import AuthCaller, CitizenIdPath, json_answer
from services.residents.eligibility import eligibility, policy_directory, resolve_policy

__all__ = ["EligibilityResponse", "router"]

router = APIRouter(prefix="/v1", tags=["eligibility"])

SECTION: Final = "eligibility"
_EARLIEST: Final = EARLIEST_DATE  # the register's first day (events.bounds), as for the resident reads
_LATEST: Final = date(9998, 12, 31)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReasonModel(_Open):
    condition: str = Field(description="The condition, e.g. `hukou_outside_city`, `continuous_residence_months`.")
    met: bool | None = Field(description="Met, failed, or `null`: cannot be assessed from the v1 events.")
    text: str = Field(description="What was found, in words.")
    clause: str | None = Field(default=None, description="The clause the condition comes from.")
    route: str | None = Field(default=None, description="The way of qualifying this condition belongs to.")


class DecisionModel(_Open):
    benefit: str = Field(description="e.g. `residence_permit`, `settlement`, `settlement_points`.")
    title: str
    eligible: bool
    conclusive: bool = Field(description="False when a 'no' hangs on a route the v1 events cannot assess.")
    score: int | None = Field(default=None, description="Points-based rules only.")
    rule: dict[str, Any] = Field(description="The clause applied: `ref`, `clause`, `quote` (the plan's words), `seed`.")
    reasons: list[ReasonModel]
    facts: dict[str, Any] = Field(description="The facts read, each with the `event_ids` behind it.")
    parameters: dict[str, Any] = Field(description="Parameters used, with `source` or `assumed`.")


class EligibilityResponse(_Open):
    policy: str
    as_of: date
    citizen_id: str
    decisions: list[DecisionModel]


@router.get(
    "/residents/{citizen_id}/eligibility",
    response_model=EligibilityResponse,
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="Which benefits of a city's plan the resident is eligible for, each decision explained",
)
async def get_eligibility(
    request: Request,
    caller: AuthCaller,
    citizen_id: CitizenIdPath,
    policy: Annotated[
        str,
        Query(
            description=f"The city's policy: one of {', '.join(POLICY_IDS)}.",
            examples=["chengdu-2017"],
            max_length=40,
        ),
    ],
    as_of: Annotated[
        date | None, Query(description="The business date decided for, YYYY-MM-DD (default: today in China).")
    ] = None,
) -> Response:
    """Every benefit of ``policy`` decided for the resident on ``as_of`` from the archived events: eligible or
    not, the clause applied, each condition met or failed in words, and the facts with the events behind them.

    Needs the ``eligibility`` section in the consumer's grant. The read is recorded in the access log of the
    resident (and of the parents whose permits the education rule looked at) before the answer is sent.
    """
    ctx = context_of(request)
    caller.require(SECTION)
    cid = citizen_id_param(citizen_id)
    try:
        chosen = resolve_policy(policy)
    except UnknownPolicyError as exc:
        raise ApiError(
            422, "unknown_policy", str(exc), {"policy": policy, "available": policy_ids(policy_directory())}
        ) from None
    day = as_of or today_in_china()
    if not _EARLIEST <= day <= _LATEST:
        raise ApiError(422, "invalid_as_of", f"as_of must be between {_EARLIEST} and {_LATEST}, got {day}")
    async with ctx.lease.connection() as conn:
        answer = await eligibility(conn, cid, chosen, day, ctx.schema)
        if answer is not None:
            await ctx.record(conn, caller, SECTION, [SECTION], answer.consulted)
        else:
            # A 404 writes no access-log entry, so re-check the grant: a revoked consumer learns nothing.
            await ctx.auth.confirm(conn, caller)
    if answer is None:
        raise ApiError(404, "not_found", f"nothing is known about {cid} on {day} (no archived event by then)")
    return json_answer(answer.body, caller)
