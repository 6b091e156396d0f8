"""The query API's endpoints (CONTRACT §7, all but eligibility): residents, events, access log, households,
statistics, and the operational ``/healthz`` (liveness), ``/readyz`` (PostgreSQL answers) and ``/metrics``.

Every handler follows the same order: authenticate (401/400/403) → read the body, if any, within its cap
(413) → validate the input (422) → read → record the read in the access log and commit (503 if that fails) →
answer. Nothing of a resident leaves before its access-log entry is durable, and no body is read before the
token was checked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.responses import Response

from events.bounds import EARLIEST_DATE, business_date
from events.citizen_id import CitizenIdError, reader_citizen_id
from events.examples import CITIZENS
from events.fields import Department
from projections.resident.reads import load_archive_rows, load_household, load_links, person_numbers
from projections.resident.render import VIEW_SECTIONS
from services.access_log.database import known_subject
from services.access_log.topic import TopicAccessLog
from services.clock import today_in_china, utc_text
from services.disclosure import month_end
from services.grants import parse_codes
from services.http.readiness import check_readiness, postgresql
from services.http.request_body import read_body
from services.query_api.auth import Caller
from services.query_api.context import context_of
from services.query_api.errors import ApiError, citizen_id_param, responses
from services.query_api.models import (
    AccessLogResponse,
    BatchGetRequest,
    BatchGetResponse,
    EventsResponse,
    Health,
    HouseholdResponse,
    Readiness,
    ResidentView,
    StatisticsResponse,
)
from services.query_api.person_log import BEFORE_HELP, person_access_log
from services.query_api.refusals import record_aggregate_read
from services.query_api.single_read import DEPARTMENT_SECTIONS, readable_departments
from services.query_api.statistics import population_statistics, validate_region_prefix
from services.query_api.views import ReadTime, read_views
from services.residents.views import members_by_person
from services.workers import metrics_response

__all__ = ["AuthCaller", "CitizenIdPath", "json_answer", "operations", "read_resident", "router"]

router = APIRouter(prefix="/v1")
operations = APIRouter()

_bearer = HTTPBearer(auto_error=False, description="The consumer token of a grant (`renkou grants add`).")
# The catalogue's example child (events.examples) and its household, as examples in the OpenAPI document.
EXAMPLE_CITIZEN: Final = CITIZENS["child"]
EXAMPLE_HOUSEHOLD: Final = "510107-00012345"
CitizenIdPath = Annotated[str, Path(description="The 18-character citizen ID.", examples=[EXAMPLE_CITIZEN])]
"""The ``{citizen_id}`` of a resident's path, as every route declares it (read with ``citizen_id_param``)."""
# A business date a read may ask for: the register's first day (events.bounds) up to a last day that leaves room
# for the calendar arithmetic of rendering (Python's dates end with the year 9999).
_EARLIEST: Final = EARLIEST_DATE
_LATEST: Final = date(9998, 12, 31)
_NO_OVERFLOW: Final = date(1, 1, 2)  # a local date from which any offset converts without leaving Python's range

MAX_BODY_BYTES: Final = 256 * 1024
"""The largest request body taken (``POST /v1/residents:batchGet``, the only endpoint with one). 1000 citizen IDs
are 21 KB as compact JSON (18 characters, 2 quotes, a comma each); written as wastefully as JSON allows — every
character a 6-byte ``\\u`` escape of four hex digits, ", " between and a line of indentation each — about 130
bytes an ID, 127 KiB in all. Twice that is the cap: any honest batch fits, and a body of megabytes is refused
unread."""

# Read as text and parsed by hand (_query_date, _query_instant), so that both read endpoints refuse a bad value
# with the same code and message.
AsOf = Annotated[
    str | None,
    Query(
        description="Business date YYYY-MM-DD: rebuild the view from the events that had happened by then.",
        json_schema_extra={"format": "date"},
    ),
]
KnownAt = Annotated[
    str | None,
    Query(
        description="RFC 3339 instant with offset: rebuild the view from the events recorded by then "
        "(as the system knew it).",
        json_schema_extra={"format": "date-time"},
    ),
]
Sections = Annotated[
    str | None,
    Query(
        description="Comma-separated view sections to return (default: every view section the grant allows).",
        examples=["identity,hukou"],
    ),
]


async def authenticated(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Required: the purpose of this request, one of the grant's purposes (e.g. school_enrolment).",
        ),
    ] = None,
) -> Caller:
    """The consumer behind the request's token, acting for its stated purpose (401/400/403 otherwise)."""
    return await context_of(request).auth.authenticate(request)


AuthCaller = Annotated[Caller, Depends(authenticated)]


def json_answer(data: Any, caller: Caller | None = None, status: int = 200) -> Response:
    """A JSON answer (orjson), carrying the request id of ``caller`` when there is one."""
    headers = {"X-Request-ID": str(caller.request_id)} if caller is not None else None
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _utc(moment: datetime) -> str:
    # The database's timestamps, in UTC as "Z" (the producer's own offset stays in the event body).
    return utc_text(moment)


def _read_time(as_of: date | None, known_at: datetime | None) -> ReadTime:
    if as_of is not None and not _EARLIEST <= as_of <= _LATEST:
        raise ApiError(422, "invalid_as_of", f"as_of must be between {_EARLIEST} and {_LATEST}, got {as_of}")
    if known_at is not None:
        if known_at.tzinfo is None or known_at.utcoffset() is None:
            raise ApiError(422, "invalid_known_at", "known_at needs a UTC offset (e.g. 2024-05-01T12:00:00+08:00)")
        # Judged by its date in China, like every recorded_at it is compared with (the local date first: converting
        # a moment of the year 9999 could overflow).
        if not (_NO_OVERFLOW <= known_at.date() <= _LATEST and _EARLIEST <= business_date(known_at) <= _LATEST):
            raise ApiError(
                422, "invalid_known_at", f"known_at must be between {_EARLIEST} and {_LATEST} (dates in China)"
            )
    return ReadTime(as_of=as_of, known_at=known_at)


def _view_sections(caller: Caller, requested: str | None) -> list[str]:
    granted: list[str] = [s for s in VIEW_SECTIONS if s in caller.sections]
    if requested is None:
        if not granted:
            raise ApiError(
                403,
                "section_not_granted",
                f"the grant of {caller.consumer!r} includes none of the resident view's sections for the purpose "
                f"{caller.purpose!r}",
                {"purpose": caller.purpose, "granted": sorted(caller.sections)},
            )
        return granted
    wanted = parse_codes(requested)
    unknown = [s for s in wanted if s not in VIEW_SECTIONS]
    if unknown or not wanted:
        raise ApiError(
            422,
            "unknown_section",
            f"sections must name view sections ({', '.join(VIEW_SECTIONS)}); got {requested!r}",
            {"unknown": unknown},
        )
    for section in wanted:
        caller.require(section)
    return [s for s in VIEW_SECTIONS if s in wanted]


async def _not_found(request: Request, caller: Caller, message: str) -> ApiError:
    # A 404 writes no access-log entry, so re-check the grant here: a revoked consumer learns nothing.
    ctx = context_of(request)
    async with ctx.lease.connection() as conn:
        await ctx.auth.confirm(conn, caller)
    return ApiError(404, "not_found", message)


# --- residents --------------------------------------------------------------------------------------------------


_PURPOSE_HEADER: Final = {
    "name": "X-Purpose",
    "in": "header",
    "required": False,
    "description": "Required: the purpose of this request, one of the grant's purposes (e.g. school_enrolment).",
    "schema": {"type": "string"},
}
_READ_PARAMETERS: Final = [
    {
        "name": "as_of",
        "in": "query",
        "required": False,
        "description": "Business date YYYY-MM-DD: rebuild the view from the events that had happened by then.",
        "schema": {"type": "string", "format": "date"},
    },
    {
        "name": "known_at",
        "in": "query",
        "required": False,
        "description": "RFC 3339 instant with offset: rebuild the view from the events recorded by then "
        "(as the system knew it).",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "sections",
        "in": "query",
        "required": False,
        "description": "Comma-separated view sections to return (default: every view section the grant allows).",
        "schema": {"type": "string"},
    },
    _PURPOSE_HEADER,
]


def _query_date(raw: str | None, name: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, f"invalid_{name}", f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def _query_instant(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            422, f"invalid_{name}", f"{name} must be an RFC 3339 instant (2024-05-01T12:00:00+08:00), got {raw!r}"
        ) from None


@router.get(
    "/residents/{citizen_id}",
    response_model=ResidentView,
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="One resident's view, only the granted sections",
    openapi_extra={"parameters": _READ_PARAMETERS, "security": [{"HTTPBearer": []}]},
)
async def get_resident(
    request: Request,
    citizen_id: CitizenIdPath,
) -> Response:
    """The resident view with only the sections the consumer's grant allows (plus ``citizen_id``).

    With ``as_of`` and/or ``known_at`` the view is rebuilt from the archived events (bitemporal read). The read
    is recorded in the resident's access log before the answer is sent.
    """
    # In a running service ``services.query_api.fast_lane`` answers this operation before FastAPI's routing;
    # this route declares it (OpenAPI) and serves it when the lane is off.
    return await read_resident(request, citizen_id)


async def read_resident(request: Request, citizen_id: str) -> Response:
    """``GET /v1/residents/{citizen_id}``: authenticate, validate, read, record, answer (or raise ``ApiError``).

    Parameters are read by hand rather than through FastAPI's dependency machinery, which costs more CPU than the
    rest of the request; the OpenAPI operation declares them all the same.
    """
    ctx = context_of(request)
    caller = await ctx.auth.authenticate(request)
    cid = citizen_id_param(citizen_id)
    query = request.query_params
    when = _read_time(_query_date(query.get("as_of"), "as_of"), _query_instant(query.get("known_at"), "known_at"))
    chosen = _view_sections(caller, query.get("sections"))
    async with ctx.lease.connection() as conn:
        if when.live and "family" not in chosen:  # the hot path: read and recorded by one statement
            view = await ctx.read_resident(conn, caller, cid, chosen)
        else:
            # A family section discloses relatives, whose entries must commit with the subject's: read first,
            # then record them all in one group commit (each chain head locked in citizen order: no deadlock).
            view = (await read_views(conn, [cid], when, chosen, ctx.schema)).get(cid)
            if view is not None:
                await ctx.record_read(conn, caller, "resident", chosen, [view])
    if view is None:
        raise await _not_found(request, caller, f"no resident {cid} (nothing is known about this citizen ID)")
    return json_answer(view, caller)


async def _batch_request(request: Request) -> BatchGetRequest:
    """The batch's body, read only now (the caller is authenticated) and at most ``MAX_BODY_BYTES`` of it."""
    raw = await read_body(request, MAX_BODY_BYTES)
    try:
        return BatchGetRequest.model_validate_json(raw)
    except ValidationError as exc:
        # FastAPI's own shape for a body that does not validate (the error handler renders it).
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(errors) from None


@router.post(
    "/residents:batchGet",
    response_model=BatchGetResponse,
    responses=responses(400, 401, 403, 413, 422, 503),
    summary="Up to 1000 residents' views in one request",
    # The body is read by hand, after the token was checked (FastAPI reads a declared body before any
    # dependency runs); it is declared here for the OpenAPI document.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BatchGetRequest.model_json_schema()}},
        }
    },
)
async def batch_get(
    request: Request,
    caller: AuthCaller,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    sections: Sections = None,
) -> Response:
    """The views of up to 1000 citizens, each filtered like the single read; one access-log entry per resident
    returned, all written in one transaction before the answer. The body is at most 256 KiB (413 otherwise)."""
    ctx = context_of(request)
    body = await _batch_request(request)
    ids: list[str] = []
    invalid: list[dict[str, Any]] = []
    for index, raw in enumerate(body.citizen_ids):
        try:
            ids.append(reader_citizen_id(raw))
        except CitizenIdError as exc:
            invalid.append({"index": index, "citizen_id": raw, "problems": list(exc.problems)})
    if invalid:
        first = invalid[0]
        raise ApiError(
            422,
            "invalid_citizen_id",
            f"{len(invalid)} invalid citizen ID(s); citizen_ids[{first['index']}] {first['citizen_id']!r}: "
            f"{'; '.join(first['problems'])}",
            invalid,
        )
    when = _read_time(_query_date(as_of, "as_of"), _query_instant(known_at, "known_at"))
    chosen = _view_sections(caller, sections)
    unique = list(dict.fromkeys(ids))
    async with ctx.lease.connection() as conn:
        views = await read_views(conn, unique, when, chosen, ctx.schema)
        if views:
            await ctx.record_read(conn, caller, "residents:batchGet", chosen, list(views.values()))
        else:
            await ctx.auth.confirm(conn, caller)
    return json_answer(
        {
            "residents": [views[c] for c in unique if c in views],
            "not_found": [c for c in unique if c not in views],
        },
        caller,
    )


@router.get(
    "/residents/{citizen_id}/events",
    response_model=EventsResponse,
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="The resident's archived events with Kafka coordinates and hash-chain links",
)
async def get_events(
    request: Request,
    caller: AuthCaller,
    citizen_id: CitizenIdPath,
    department: Annotated[
        Department | None,
        Query(description="Only this department's chain."),
    ] = None,
) -> Response:
    """Every archived event of the resident (one department's, if asked), per department in chain order, with
    topic/partition/offset and ``prev_hash``/``hash`` so that an auditor can recompute each chain."""
    ctx = context_of(request)
    caller.require("events")
    cid = citizen_id_param(citizen_id)
    # Only the events of departments whose sections this purpose may read (CONTRACT §11): a vaccination's clinic
    # and a contribution's amount are no one's business who may not read health or social insurance.
    readable = readable_departments(caller.sections)
    if not readable:
        raise ApiError(
            403,
            "section_not_granted",
            f"raw events need the sections of their department as well, and the purpose {caller.purpose!r} has "
            "none of them",
            {"purpose": caller.purpose, "granted": sorted(caller.sections), "departments": DEPARTMENT_SECTIONS},
        )
    if department is not None and department not in readable:
        raise ApiError(
            403,
            "section_not_granted",
            f"{department}'s events need the sections {', '.join(DEPARTMENT_SECTIONS[department])} for the purpose "
            f"{caller.purpose!r}",
            {"department": department, "purpose": caller.purpose, "granted": sorted(caller.sections)},
        )
    async with ctx.lease.connection() as conn:
        # A person's events under every number they have held (§12), each chain in its own order.
        numbers = await person_numbers(conn, cid, ctx.schema)
        cid = numbers[0]
        rows = await load_archive_rows(conn, numbers, readable, ctx.schema)
        if rows:
            await ctx.record(conn, caller, "events", ["events"], [cid])
    if not rows:
        raise await _not_found(request, caller, f"no archived event about {cid}")
    events = []
    for r in rows:
        if department is not None and r["department"] != department:
            continue
        body = bytes(r["body"])
        events.append(
            {
                "citizen_id": r["citizen_id"],
                "department": r["department"],
                "chain_seq": r["chain_seq"],
                "event_id": str(r["event_id"]),
                "event_type": r["event_type"],
                "schema_version": r["schema_version"],
                "occurred_at": _utc(r["occurred_at"]),
                "recorded_at": _utc(r["recorded_at"]),
                "topic": r["topic"],
                "partition": r["kafka_partition"],
                "offset": r["kafka_offset"],
                "archived_at": _utc(r["archived_at"]),
                "prev_hash": bytes(r["prev_hash"]).hex(),
                "hash": bytes(r["hash"]).hex(),
                "body": body.decode("utf-8", errors="replace"),
                "event": orjson.loads(body),
            }
        )
    return json_answer({"citizen_id": cid, "events": events}, caller)


@router.get(
    "/residents/{citizen_id}/access-log",
    response_model=AccessLogResponse,
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="Who read this resident, when, for which purpose and sections",
)
async def get_access_log(
    request: Request,
    caller: AuthCaller,
    citizen_id: CitizenIdPath,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many entries.")] = 100,
    before_seq: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only entries older than this chain_seq (paging).")
    ] = None,
    before: Annotated[str | None, Query(max_length=400, description=BEFORE_HELP)] = None,
) -> Response:
    """The resident's access log, newest first — what a citizen-facing service shows: who looked, when, why.

    Reading it is itself a read of the resident and is recorded (after the entries returned). A person who has
    held several numbers (§12) is answered with the entries of all of them, by any of them.
    """
    ctx = context_of(request)
    caller.require("access_log")
    cid = citizen_id_param(citizen_id)
    async with ctx.lease.connection() as conn:
        numbers = await person_numbers(conn, cid, ctx.schema)
        known = await known_subject(conn, numbers, ctx.schema)
        if known:
            answer = await person_access_log(
                conn,
                numbers,
                limit=limit,
                before_seq=before_seq,
                before=before,
                show_aliases="identity" in caller.sections,
            )
            await ctx.record(conn, caller, "access_log", ["access_log"], [numbers[0]])
    if not known:
        raise await _not_found(request, caller, f"no resident {cid} and no access log about this citizen ID")
    return json_answer(answer, caller)


# --- households -------------------------------------------------------------------------------------------------


@router.get(
    "/households/{household_id}",
    response_model=HouseholdResponse,
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="The members of a household (needs the family section)",
)
async def get_household(
    request: Request,
    caller: AuthCaller,
    household_id: Annotated[
        str, Path(description="The household number public security registered.", examples=[EXAMPLE_HOUSEHOLD])
    ],
) -> Response:
    """The residents registered in the household now, with their relationship to its head. Each member
    returned is a read of that resident and is recorded in their access log."""
    ctx = context_of(request)
    caller.require("family")
    hid = household_id.strip()
    if not 1 <= len(hid) <= 64 or not _is_identifier(hid):
        raise ApiError(
            422,
            "invalid_household_id",
            "household_id must be 1-64 printable ASCII characters without spaces",
            {"household_id": household_id},
        )
    async with ctx.lease.connection() as conn:
        rows = await load_household(conn, hid, ctx.schema)
        members = await _members_by_person(conn, rows, ctx.schema)
        if members:
            await ctx.record(conn, caller, "household", ["family"], [m["citizen_id"] for m in members])
    if not members:
        raise await _not_found(request, caller, f"no household {hid!r} with registered members")
    return json_answer(
        {
            "household_id": hid,
            "household_type": rows[0]["household_type"],
            "region_code": rows[0]["region_code"],
            "members": members,
        },
        caller,
    )


async def _members_by_person(conn: asyncpg.Connection, rows: list[asyncpg.Record], schema: str) -> list[dict[str, str]]:
    """A household's members, each person once under their current number (CONTRACT §12; ``members_by_person``),
    the best-placed relationship kept."""
    people = await load_links(conn, [r["citizen_id"] for r in rows], schema)
    ranked = sorted(rows, key=lambda r: (_RELATIONSHIP_ORDER.get(r["relationship"], 99), r["citizen_id"]))
    members = members_by_person(
        ({"citizen_id": r["citizen_id"], "relationship": r["relationship"]} for r in ranked), people
    )
    return sorted(members, key=lambda m: (_RELATIONSHIP_ORDER.get(m["relationship"], 99), m["citizen_id"]))


_RELATIONSHIP_ORDER: Final = {
    name: rank for rank, name in enumerate(("head", "spouse", "child", "parent", "grandchild", "sibling", "other"))
}
_IDENTIFIER_CHARS: Final = frozenset(chr(c) for c in range(0x21, 0x7F))


def _is_identifier(text: str) -> bool:
    # The household numbers' own rule (events.fields.IDENTIFIER_PATTERN, ^[!-~]+$): printable ASCII, no spaces.
    return _IDENTIFIER_CHARS.issuperset(text)


# --- statistics -------------------------------------------------------------------------------------------------


@router.get(
    "/statistics/population",
    response_model=StatisticsResponse,
    responses=responses(400, 401, 403, 422, 503),
    summary="Registered, resident and permit-holder populations and their urban shares",
)
async def get_population_statistics(
    request: Request,
    caller: AuthCaller,
    region_code: Annotated[str, Query(description="Region code prefix: 2, 4 or 6 digits.", examples=["5101"])],
    as_of: Annotated[date | None, Query(description="The date counted (default: today in China).")] = None,
    known_at: Annotated[
        str | None,
        Query(
            description="Count only what the log held at this RFC 3339 instant: the same known_at gives the same "
            "figures, whatever arrives later and after a replay (default: the live projection).",
            max_length=64,
        ),
    ] = None,
) -> Response:
    """Population figures under a region code prefix at the end of a month, in total and per district;
    definitions in ``services.query_api.statistics``. ``as_of`` resolves to the latest month end on or before it
    (the answer's ``as_of``, beside ``requested_as_of``); counts that could point at individuals are suppressed
    (``services.disclosure``). Aggregates only: no resident's access log, but the read is recorded with its
    consumer, purpose and region."""
    ctx = context_of(request)
    caller.require("statistics")
    try:
        prefix = validate_region_prefix(region_code)
    except ValueError as exc:
        raise ApiError(422, "invalid_region_code", str(exc), {"region_code": region_code}) from None
    requested = as_of or today_in_china()
    if not _EARLIEST <= requested <= _LATEST:
        raise ApiError(422, "invalid_as_of", f"as_of must be between {_EARLIEST} and {_LATEST}, got {requested}")
    day = month_end(requested)
    cut = _read_time(None, _query_instant(known_at, "known_at")).known_at
    if cut is not None and cut > datetime.now(UTC):
        raise ApiError(422, "invalid_known_at", "known_at is in the future: what the log will hold is not known yet")
    async with ctx.lease.connection() as conn:
        await ctx.auth.confirm(conn, caller)
        figures = await population_statistics(conn, prefix, day, ctx.schema, known_at=cut)
    async with ctx.primary.connection() as conn:  # where reads go to a standby, the record is written here
        # Aggregates name no resident, but the read is a read all the same: who, why, which region (§11).
        await record_aggregate_read(
            conn,
            request_id=caller.request_id,
            consumer=caller.consumer,
            purpose=caller.purpose,
            endpoint="statistics/population",
            detail=orjson.dumps(
                {"region_code": prefix, "as_of": day.isoformat()} | ({"known_at": known_at} if cut else {})
            ).decode(),
        )
    return json_answer({**figures.published(), "requested_as_of": requested.isoformat()}, caller)


# --- operations -------------------------------------------------------------------------------------------------


@operations.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> dict[str, str]:
    """200 while the process serves, whatever PostgreSQL does (``/readyz`` says whether it answers)."""
    return {"status": "ok"}


@operations.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: PostgreSQL answers",
    responses={503: {"model": Readiness, "description": "PostgreSQL does not answer; `unavailable` says so."}},
)
async def readyz(request: Request) -> Response:
    """200 ``{"status": "ready", "checks": {"postgresql": "ok"}}`` when PostgreSQL (where reads go) answers
    ``SELECT 1`` within 2 s — and, with the access log on Kafka, a broker answers a metadata request; 503 naming
    what does not (with ``Retry-After``) otherwise."""
    ctx = context_of(request)
    checks = {"postgresql": postgresql(ctx.lease.engine)}
    if isinstance(ctx.access_log, TopicAccessLog):
        checks["kafka"] = ctx.access_log.ready
    readiness = await check_readiness(checks)
    return readiness.response()


@operations.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    # With several workers (services.workers), every worker's values, whichever worker answers.
    return metrics_response(context_of(request).metrics.registry)
