"""The console's pages: staff (operators and auditors) and citizens (``/me``), each action recorded.

Every GET only reads (and records that it read, where it shows a resident's data); every change is a POST with
the session's CSRF token. Bad input answers 400 naming what is wrong; an auditor's attempt to change something
answers 403 (and is recorded); a dependency that is down answers 503 saying which.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from events.bounds import CHINA_TZ
from events.citizen_id import CitizenIdError, reader_citizen_id
from projections.resident.reads import archived_event_ids, person_numbers
from services.console.accounts import NAME_PATTERN, authenticate, find_account, may_change
from services.console.actions import recent_actions, record_action
from services.console.citizen_ids import citizens_in
from services.console.context import ConsoleContext, LoginsBusyError, context_of
from services.console.jobs import KINDS, JobBusyError
from services.console.labels import choose_language, label
from services.console.sessions import COOKIE, Session
from services.grants import (
    GrantError,
    add_grant,
    check_request,
    end_of_day,
    list_grants,
    parse_purpose_sections,
    revoke_grant,
    validate_name,
    validate_purposes,
)
from services.identity import local_idp
from services.identity.oidc import CitizenAuthError
from services.operations.audit import read_timeline, verify_chains
from services.operations.base import BadInputError, NotFoundError, OperationError, UnavailableError
from services.operations.dlq import get_dead_letter, list_dead_letters, parse_coordinates, redrive, value_for_display
from services.operations.operator_reads import record_operator_read
from services.operations.reads import refused_reads, search_access_log
from services.operations.schemas import DEFAULT_SHADOW, LIVE, check_name
from services.outages import OUTAGE_ROOTS, describe, is_outage, outage_error
from services.query_api.citizens import own_view
from services.query_api.person_log import person_access_log

__all__ = ["install", "residents_named", "safe_next"]

log = logging.getLogger("renkou.console")
CALLBACK = "/me/callback"
DEAD_LETTER_REVIEW = "dead_letter_review"
"""The purpose of an operator's look at a dead letter, in the access log of the resident it is about."""
FAILURES_PER_ADDRESS = 20
"""Failed logins from one address within the throttle's window before it is locked (per name: the throttle's own)."""
OIDC_COOKIE = "renkou_console_login"
"""The citizen's login in flight, for a provider on another site (its form_post is a cross-site POST)."""
LOCAL_AUTHORIZE = "/idp/authorize"


class PageError(Exception):
    """An answer other than the page asked for: ``status`` and a one-line ``message`` (or a redirect)."""

    def __init__(self, status: int, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


# --- sessions, language, rendering ------------------------------------------------------------------------------
def session_of(request: Request) -> Session | None:
    return context_of(request).sessions.get(request.cookies.get(COOKIE))


def lang_of(request: Request, session: Session | None) -> str:
    chosen = request.query_params.get("lang")
    if session is not None and chosen in ("zh", "en"):
        session.lang = chosen
    return choose_language(chosen or (session.lang if session else None), request.headers.get("accept-language"))


def set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="lax",  # a link from elsewhere keeps the session; a cross-site POST never carries it
        secure=context_of(request).settings.console_secure_cookies,
        path="/",
    )


def render(
    request: Request, template: str, session: Session | None, *, status_code: int = 200, **values: Any
) -> HTMLResponse:
    lang = lang_of(request, session)
    page = context_of(request).templates.get_template(template)
    html = page.render(
        lang=lang,
        t=lambda key: label(key, lang),
        session=session,
        csrf=session.csrf if session is not None else "",
        path=request.url.path,
        may_change=session is not None and session.kind == "staff" and may_change(session.role or ""),
        **values,
    )
    response = HTMLResponse(html, status_code)
    if session is not None:
        set_cookie(request, response, session)
    return response


def anonymous(request: Request) -> Session:
    """The request's session, or a new anonymous one (for a login form's CSRF token)."""
    return session_of(request) or context_of(request).sessions.new()


async def staff(request: Request) -> Session:
    """The operator's or auditor's session — re-checked against the account on every request, so that a removed
    account (or a changed role) takes effect at once — or a redirect to the login page."""
    ctx = context_of(request)
    session = session_of(request)
    if session is not None and session.kind == "staff" and session.name is not None:
        async with ctx.pool.acquire() as conn:
            account = await find_account(conn, session.name)
        if account is not None and (account.role, account.created_at) == (session.role, session.account_created):
            return session
        ctx.sessions.end(session)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise PageError(303, "log in first", location="/login?" + urlencode({"next": target}))


async def form_of(request: Request) -> FormData:
    """A POST's form: no file, at most 50 fields of 64 KiB (every field is checked again by ``field``)."""
    return await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)


async def posted(request: Request, session: Session) -> FormData:
    """The form of a POST, once its CSRF token and origin are checked (403 otherwise)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own and origin != context_of(request).settings.console_public_origin:
            raise PageError(403, f"a form from {origin} is not the console's own ({own})")
    form = await form_of(request)
    token = form.get("csrf")
    if not session.csrf_ok(token if isinstance(token, str) else None):
        raise PageError(403, "csrf")
    return form


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def field(
    form: FormData | Mapping[str, str], name: str, *, required: bool = True, max_len: int = 200, strip: bool = True
) -> str:
    raw = form.get(name)
    value = (raw.strip() if strip else raw) if isinstance(raw, str) else ""
    if CONTROL.search(value):
        raise PageError(400, f"{name} holds a control character")
    if required and not value:
        raise PageError(400, f"{name} is required")
    if len(value) > max_len:
        raise PageError(400, f"{name} is longer than {max_len} characters")
    return value


def citizen_id_field(value: str, name: str = "citizen_id") -> str:
    try:
        return reader_citizen_id(value)
    except CitizenIdError as exc:
        raise PageError(400, f"{name} {value!r} is not a valid citizen ID: {'; '.join(exc.problems)}") from None


def purpose_field(value: str) -> str:
    try:
        (purpose,) = validate_purposes([value])
    except GrantError as exc:
        raise PageError(400, str(exc)) from None
    return purpose


def moment_field(value: str, name: str) -> datetime | None:
    """A date (the start of that day, China time) or an ISO instant; empty → None."""
    if not value:
        return None
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0), tzinfo=CHINA_TZ)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(400, f"{name} {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from None
    if not 1900 <= moment.year <= 9000:
        raise PageError(400, f"{name} {value!r} is outside the years 1900-9000")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def act(
    ctx: ConsoleContext,
    session: Session,
    action: str,
    outcome: str,
    target: str | None = None,
    **detail: Any,
) -> None:
    async with ctx.pool.acquire() as conn:
        await record_action(
            conn,
            actor=session.actor,
            role=session.role or "",
            action=action,
            target=target,
            outcome=outcome,
            detail=detail,
        )


async def operator_only(request: Request, session: Session, action: str, target: str | None = None) -> None:
    if not may_change(session.role or ""):
        await act(context_of(request), session, action, "refused: role", target)
        raise PageError(403, "forbidden")


# --- the app's routes -------------------------------------------------------------------------------------------
router = APIRouter()
"""The console's pages; ``install`` puts them on the app."""


async def page_error(request: Request, exc: PageError) -> Response:
    if exc.location is not None:
        return RedirectResponse(exc.location, status_code=exc.status)
    session = session_of(request)
    message = label(exc.message, lang_of(request, session)) if exc.message in ("csrf", "forbidden") else exc.message
    return render(request, "error.html", session, status_code=exc.status, message=message)


async def operation_error(request: Request, exc: OperationError) -> Response:
    code = 400 if isinstance(exc, BadInputError) else 404 if isinstance(exc, NotFoundError) else 409
    if isinstance(exc, UnavailableError):
        code = 503
    return render(request, "error.html", session_of(request), status_code=code, message=str(exc))


async def bad_value(request: Request, exc: Exception) -> Response:
    message = f"a value is out of range or not valid here ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    return render(request, "error.html", session_of(request), status_code=400, message=message)


async def unavailable(request: Request, exc: Exception) -> Response:
    # The APIs' rule (services.outages): a dependency that is down, starting or failing over is a 503; any
    # other error of a driver is a bug, a 500 logged with its traceback.
    if not is_outage(exc):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "internal error; it has been logged"
        return render(request, "error.html", session_of(request), status_code=500, message=message)
    log.warning("a dependency is unavailable: %s", describe(exc))
    message = f"{outage_error(exc)[1]} ({describe(exc)})"
    return render(request, "error.html", session_of(request), status_code=503, message=message)


# --- logging in and out ---------------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request) -> Response:
    session = anonymous(request)
    return render(request, "login.html", session, next=safe_next(request.query_params.get("next")), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = context_of(request)
    session = anonymous(request)
    form = await posted(request, session)
    name = field(form, "name", max_len=63)
    password = field(form, "password", max_len=200, strip=False)
    target = safe_next(field(form, "next", required=False, max_len=500))
    lang = lang_of(request, session)
    if not NAME_PATTERN.fullmatch(name):  # no such account can exist: nothing to hash, nothing to record
        return render(request, "login.html", session, status_code=401, next=target, error=label("bad_login", lang))
    # The one typing is not known yet: the record names the account tried, as an anonymous actor.
    attempt = Session(session.id, "anonymous", "", 0, 0, name=name, role="anonymous")
    client = f"ip:{request.client.host if request.client else '-'}"

    def locked() -> str | None:
        """The name or the address locked now, if either is."""
        limits = ((name, None), (client, FAILURES_PER_ADDRESS))
        return next((key for key, limit in limits if ctx.throttle.locked(key, limit)), None)

    if (key := locked()) is not None:
        if ctx.throttle.first_report(key):
            await act(ctx, attempt, "login", "refused: locked", detail_key=key)
        return render(request, "login.html", session, status_code=429, next=target, error=label("locked", lang))
    try:
        async with ctx.hashing.one():
            # Checked again one attempt at a time: attempts queued together cannot all pass the check above.
            if locked() is not None:
                return render(request, "login.html", session, status_code=429, next=target, error=label("locked", lang))
            async with ctx.pool.acquire() as conn:
                account = await authenticate(conn, name, password)
            if account is None:
                ctx.throttle.failed(name)
                ctx.throttle.failed(client)
    except LoginsBusyError:
        # A flood, whatever addresses it claims: refused before it queues, so real logins are not stuck behind it.
        return render(request, "login.html", session, status_code=429, next=target, error=label("locked", lang))
    if account is None:
        await act(ctx, attempt, "login", "refused: wrong name or password")
        return render(request, "login.html", session, status_code=401, next=target, error=label("bad_login", lang))
    ctx.throttle.succeeded(name)
    fresh = ctx.sessions.replace(session, "staff", name=account.name, role=account.role)
    fresh.account_created = account.created_at
    await act(ctx, fresh, "login", "ok")
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, fresh)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = context_of(request)
    session = session_of(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    await posted(request, session)
    if session.kind != "anonymous":
        await act(ctx, session, "logout", "ok")
    ctx.sessions.end(session)
    response = RedirectResponse("/me" if session.kind == "citizen" else "/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# --- status ---------------------------------------------------------------------------------------------
@router.get("/")
async def status_page(request: Request) -> Response:
    session = await staff(request)
    return render(request, "status.html", session, current=await context_of(request).status())


@router.get("/status/fragment")
async def status_fragment(request: Request) -> Response:
    session = await staff(request)
    return render(request, "status_fragment.html", session, current=await context_of(request).status())


# --- dead letters ---------------------------------------------------------------------------------------
@router.get("/dead-letters")
async def dead_letters(request: Request) -> Response:
    session = await staff(request)
    pending = request.query_params.get("pending") == "1"
    async with context_of(request).pool.acquire() as conn:
        letters, count = await list_dead_letters(conn, pending_only=pending, limit=200)
        applied = await _applied(conn, [d.event_id for d in letters])
    return render(request, "dead_letters.html", session, letters=letters, count=count, pending=pending, applied=applied)


@router.get("/dead-letters/show")
async def dead_letter(request: Request) -> Response:
    session = await staff(request)
    ctx = context_of(request)
    raw_at = field(request.query_params, "at", max_len=400)
    at = parse_coordinates(raw_at)
    async with ctx.pool.acquire() as conn:
        letter = await get_dead_letter(conn, at)
        applied = await _applied(conn, [letter.event_id])
        # The record is a resident's event: showing it is a read of their data, in their access log first.
        named = residents_named(letter.key, letter.value)
        if named:
            await record_operator_read(
                conn,
                operator=session.actor,
                purpose=DEAD_LETTER_REVIEW,
                endpoint="console:dead-letter",
                sections=["events"],
                views=[{"citizen_id": c} for c in named],
            )
    await act(ctx, session, "dead letter shown", "ok", raw_at, residents=len(named))
    return render(
        request,
        "dead_letter.html",
        session,
        letter=letter,
        value=_pretty(value_for_display(letter.value)),
        applied=letter.event_id in applied,
        confirm=request.query_params.get("confirm") == "1",
    )


@router.post("/dead-letters/redrive")
async def redrive_letter(request: Request) -> Response:
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    raw = field(form, "at", max_len=400)
    await operator_only(request, session, "re-drive", raw)
    at = parse_coordinates(raw)
    try:
        landed = await redrive(ctx.settings, at)
    except Exception as exc:
        await act(ctx, session, "re-drive", f"refused: {type(exc).__name__}: {exc}"[:500], raw)
        raise
    await act(
        ctx,
        session,
        "re-drive",
        "ok",
        raw,
        event_id=landed.event_id,
        to=f"{landed.topic}:{landed.partition}:{landed.offset}",
    )
    return RedirectResponse("/dead-letters/show?" + urlencode({"at": raw}), status_code=303)


# --- replay, verify, swap -------------------------------------------------------------------------------
@router.get("/jobs")
async def jobs_page(request: Request) -> Response:
    session = await staff(request)
    jobs = sorted(context_of(request).jobs.jobs.values(), key=lambda j: -j.id)
    return render(request, "jobs.html", session, jobs=jobs, kinds=KINDS, default_shadow=DEFAULT_SHADOW)


@router.post("/jobs")
async def start_job(request: Request) -> Response:
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    kind = field(form, "kind", max_len=20)
    shadow = field(form, "shadow", required=False, max_len=63) or DEFAULT_SHADOW
    if kind not in KINDS:
        raise PageError(400, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    await operator_only(request, session, kind, shadow)
    check_name(shadow)
    try:
        job = await ctx.jobs.start(kind, shadow, session.actor)
    except JobBusyError as exc:
        await act(ctx, session, kind, f"refused: {exc}", shadow)
        raise PageError(409, str(exc)) from None
    await act(ctx, session, kind, "started", shadow, job=job.id)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: int) -> Response:
    session = await staff(request)
    return render(request, "job.html", session, job=_job(request, job_id))


@router.get("/jobs/{job_id}/progress")
async def job_progress(request: Request, job_id: int) -> Response:
    session = await staff(request)
    return render(request, "job_fragment.html", session, job=_job(request, job_id))


# --- a resident's audit timeline ------------------------------------------------------------------------
@router.get("/timeline")
async def timeline_form(request: Request) -> Response:
    session = await staff(request)
    return render(request, "timeline.html", session, numbers=None, entries=[], chains=None, purpose="audit")


@router.post("/timeline")
async def timeline_page(request: Request) -> Response:
    """A POST with the CSRF token: a link cannot make an operator record a read with a purpose of its choosing."""
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    cid = citizen_id_field(field(form, "citizen_id", max_len=40))
    purpose = purpose_field(field(form, "purpose", max_len=64))
    async with ctx.pool.acquire() as conn:
        numbers, entries = await read_timeline(
            conn, cid, operator=session.actor, purpose=purpose, endpoint="console:timeline"
        )
        chains = [await verify_chains(conn, n, schema=LIVE, limit=20) for n in numbers]
    await act(ctx, session, "timeline", "ok", cid, purpose=purpose, events=len(entries))
    return render(request, "timeline.html", session, numbers=numbers, entries=entries, chains=chains, purpose=purpose)


# --- grants ---------------------------------------------------------------------------------------------
@router.get("/grants")
async def grants_page(request: Request) -> Response:
    session = await staff(request)
    async with context_of(request).pool.acquire() as conn:
        grants = await list_grants(conn)
    return render(request, "grants.html", session, grants=grants, now=datetime.now(UTC), token=None, added=None)


@router.post("/grants")
async def add_grant_page(request: Request) -> Response:
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    name = field(form, "name", max_len=64)
    await operator_only(request, session, "grant add", name)
    lines = [line.strip() for line in field(form, "purposes", max_len=4000).splitlines() if line.strip()]
    expires = field(form, "expires", required=False, max_len=10)
    view_topic = field(form, "view_topic", required=False, max_len=64) or None
    try:
        validate_name(name)
        chosen = parse_purpose_sections(lines)
        expires_at = end_of_day(date.fromisoformat(expires)) if expires else None
        check_request(name, chosen, view_topic, expires_at, expires)
    except OverflowError:
        raise PageError(400, f"expiry {expires} is past the year 9000") from None
    except (GrantError, ValueError) as exc:
        raise PageError(400, str(exc)) from None
    async with ctx.pool.acquire() as conn:
        try:
            token = await add_grant(conn, name, expires_at=expires_at, by_purpose=chosen, view_topic=view_topic)
        except GrantError as exc:
            raise PageError(409, str(exc)) from None
        grants = await list_grants(conn)
    await act(ctx, session, "grant add", "ok", name, purposes=chosen, expires=expires or None, view_topic=view_topic)
    return render(request, "grants.html", session, grants=grants, now=datetime.now(UTC), token=token, added=name)


@router.post("/grants/revoke")
async def revoke_page(request: Request) -> Response:
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    name = field(form, "name", max_len=64)
    await operator_only(request, session, "grant revoke", name)
    if form.get("confirm") != "yes":
        return render(request, "confirm_revoke.html", session, name=name)
    async with ctx.pool.acquire() as conn:
        try:
            await revoke_grant(conn, name)
        except GrantError as exc:
            raise PageError(404, str(exc)) from None
    await act(ctx, session, "grant revoke", "ok", name)
    return RedirectResponse("/grants", status_code=303)


# --- who read what --------------------------------------------------------------------------------------
@router.get("/access-log")
async def access_log_form(request: Request) -> Response:
    session = await staff(request)
    filters = dict.fromkeys(("citizen_id", "consumer", "purpose", "since", "until"), "")
    return render(request, "access_log.html", session, filters=filters, rows=None, read_purpose="audit")


@router.post("/access-log")
async def access_log_page(request: Request) -> Response:
    """Who read whom: the residents the answer names each get an entry of this read in their own log."""
    ctx = context_of(request)
    session = await staff(request)
    form = await posted(request, session)
    keys = ("citizen_id", "consumer", "purpose", "since", "until")
    filters = {k: field(form, k, required=False, max_len=64) for k in keys}
    if not any(filters.values()):
        raise PageError(400, "give at least one of: citizen ID, consumer, purpose, from, until")
    read_purpose = purpose_field(field(form, "read_purpose", max_len=64))
    since, until = moment_field(filters["since"], "since"), moment_field(filters["until"], "until")
    async with ctx.pool.acquire() as conn:
        numbers = None
        if filters["citizen_id"]:
            numbers = list(await person_numbers(conn, citizen_id_field(filters["citizen_id"])))
        rows = await search_access_log(
            conn,
            citizen_ids=numbers,
            consumer=filters["consumer"] or None,
            purpose=filters["purpose"] or None,
            since=since,
            until=until,
            limit=200,
        )
        shown = sorted({r["citizen_id"] for r in rows})
        if shown:
            await record_operator_read(
                conn,
                operator=session.actor,
                purpose=read_purpose,
                endpoint="console:access-log",
                sections=["access_log"],
                views=[{"citizen_id": c} for c in shown],
            )
    found = {k: v for k, v in filters.items() if v}
    await act(ctx, session, "access-log search", "ok", None, **found, purpose_stated=read_purpose, found=len(rows))
    return render(request, "access_log.html", session, filters=filters, rows=rows, read_purpose=read_purpose)


@router.get("/refused")
async def refused_page(request: Request) -> Response:
    session = await staff(request)
    consumer = field(request.query_params, "consumer", required=False, max_len=64) or None
    async with context_of(request).pool.acquire() as conn:
        rows = await refused_reads(conn, consumer=consumer, limit=200)
    return render(request, "refused.html", session, rows=rows, consumer=consumer or "")


@router.get("/actions")
async def actions_page(request: Request) -> Response:
    session = await staff(request)
    async with context_of(request).pool.acquire() as conn:
        actions = await recent_actions(conn, limit=200)
    return render(request, "actions.html", session, actions=actions)


# --- citizens -------------------------------------------------------------------------------------------
@router.get("/me")
async def me(request: Request) -> Response:
    ctx = context_of(request)
    session = session_of(request)
    if session is None or session.kind != "citizen" or session.name is None:
        return render(
            request, "me_login.html", session or ctx.sessions.new(), can_login=_authorize_url(ctx) is not None
        )
    async with ctx.pool.acquire() as conn:
        found = await own_view(conn, session.name, LIVE, endpoint="console:me")
        numbers = await person_numbers(conn, session.name, LIVE)
        reads = await person_access_log(conn, numbers, limit=200, before_seq=None, before=None, show_aliases=True)
    view = found[0] if found is not None else None
    sections = {k: _pretty(v) for k, v in (view or {}).items() if k not in ("citizen_id",) and v is not None}
    return render(request, "me.html", session, view=view, sections=sections, reads=reads["entries"])


@router.get("/me/login")
async def me_login(request: Request) -> Response:
    ctx = context_of(request)
    authorize = _authorize_url(ctx)
    if authorize is None:
        raise PageError(
            404, "no identity provider is configured for browser logins (RENKOU_CITIZEN_OIDC_AUTHORIZE_URL)"
        )
    session = anonymous(request)
    session.nonce, session.state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    query = urlencode(
        {
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            "client_id": ctx.settings.citizen_oidc_audience,
            "redirect_uri": str(request.url_for("me_callback")),
            "state": session.state,
            "nonce": session.nonce,
        }
    )
    response = RedirectResponse(f"{authorize}?{query}", status_code=303)
    set_cookie(request, response, session)
    if not authorize.startswith("/"):
        # The provider's answer comes back as a cross-site POST, which carries no Lax cookie: this one, only for
        # the callback, does (browsers take SameSite=None only with Secure, that is over HTTPS).
        response.set_cookie(
            OIDC_COOKIE, session.id, httponly=True, samesite="none", secure=True, path=CALLBACK, max_age=600
        )
    return response


@router.post(CALLBACK, name="me_callback")
async def me_callback(request: Request) -> Response:
    ctx = context_of(request)
    session = session_of(request) or ctx.sessions.get(request.cookies.get(OIDC_COOKIE))
    if session is None or session.state is None or session.nonce is None:
        raise PageError(400, "no login in progress in this browser: start again from /me")
    form = await form_of(request)
    state = form.get("state")
    if not isinstance(state, str) or not secrets.compare_digest(state.encode(), session.state.encode()):
        raise PageError(403, "the login's state does not match this browser's: start again from /me")
    token = form.get("id_token")
    if not isinstance(token, str) or not token:
        raise PageError(400, "the identity provider sent no id_token")
    try:
        who = await ctx.verifier.verify(token)
    except CitizenAuthError as exc:
        raise PageError(401, f"{label('bad_token', lang_of(request, session))}: {exc}") from None
    if who.nonce is None or not secrets.compare_digest(who.nonce.encode(), session.nonce.encode()):
        raise PageError(401, "the token was not issued for this login (nonce)")
    fresh = ctx.sessions.replace(session, "citizen", name=who.citizen_id, role="citizen")
    await act(ctx, fresh, "citizen login", "ok", who.citizen_id)
    response = RedirectResponse("/me", status_code=303)
    set_cookie(request, response, fresh)
    response.delete_cookie(OIDC_COOKIE, path=CALLBACK)
    return response


# --- the local identity provider, for demos (loopback only) ---------------------------------------------
@router.get(LOCAL_AUTHORIZE)
async def local_authorize(request: Request) -> Response:
    ctx = context_of(request)
    _demo_idp_on(ctx, request)
    q = request.query_params
    params = {k: field(q, k, max_len=300) for k in ("client_id", "redirect_uri", "state", "nonce")}
    _same_console(request, params["redirect_uri"])
    return render(request, "idp.html", anonymous(request), params=params, error=None)


@router.post(LOCAL_AUTHORIZE)
async def local_issue(request: Request) -> Response:
    ctx = context_of(request)
    _demo_idp_on(ctx, request)
    form = await form_of(request)
    params = {k: field(form, k, max_len=300) for k in ("client_id", "redirect_uri", "state", "nonce")}
    _same_console(request, params["redirect_uri"])
    cid = citizen_id_field(field(form, "citizen_id", max_len=40))
    s = ctx.settings
    token = local_idp.issue(
        s.state_dir,
        cid,
        minutes=10,
        issuer=s.citizen_oidc_issuer,
        audience=params["client_id"],
        claim=s.citizen_id_claim,
        nonce=params["nonce"],
    )
    return render(request, "idp_post.html", None, action=params["redirect_uri"], id_token=token, state=params["state"])


def install(app: FastAPI) -> None:
    """The console's pages on ``app``, and the error pages its failures are shown with."""
    app.add_exception_handler(PageError, page_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationError, operation_error)  # type: ignore[arg-type]
    app.add_exception_handler(asyncpg.DataError, bad_value)  # a value PostgreSQL refuses (class 22)
    app.add_exception_handler(asyncpg.exceptions._base.DataError, bad_value)  # one asyncpg cannot encode
    for root in OUTAGE_ROOTS:
        app.add_exception_handler(root, unavailable)
    app.include_router(router)


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: a path of the console itself, never another site."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _authorize_url(ctx: ConsoleContext) -> str | None:
    s = ctx.settings
    if s.citizen_oidc_authorize_url:
        return s.citizen_oidc_authorize_url
    return LOCAL_AUTHORIZE if _demo_idp_allowed(ctx) else None


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _demo_idp_allowed(ctx: ConsoleContext) -> bool:
    s = ctx.settings
    return s.console_demo_idp and s.citizen_oidc_jwks is None and _loopback(s.bind_host)


FORWARDED = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def _demo_idp_on(ctx: ConsoleContext, request: Request) -> None:
    """The stand-in provider logs anyone in as anyone: only for a browser on this machine, talking to it directly
    (no proxy in between, a loopback Host: no DNS rebinding)."""
    if not _demo_idp_allowed(ctx):
        raise PageError(404, "the demo identity provider is off (RENKOU_CONSOLE_DEMO_IDP=1, on a loopback address)")
    direct = request.client is not None and _loopback(request.client.host)
    if not direct or any(h in request.headers for h in FORWARDED) or not _loopback(request.url.hostname):
        raise PageError(403, "the demo identity provider answers only a browser on this machine, directly")


def _same_console(request: Request, redirect_uri: str) -> None:
    """The demo provider answers only the console it is part of: the token goes to our own callback, nowhere else."""
    target = urlsplit(redirect_uri)
    if (target.scheme, target.netloc, target.path) != (request.url.scheme, request.url.netloc, CALLBACK):
        raise PageError(400, f"redirect_uri {redirect_uri!r} is not this console's {CALLBACK}")


def _job(request: Request, job_id: int) -> Any:
    job = context_of(request).jobs.jobs.get(job_id)
    if job is None:
        raise PageError(404, f"no job {job_id} (jobs are kept while the console runs)")
    return job


def residents_named(key: bytes | None, value: bytes | None) -> list[str]:
    """Every citizen a dead-lettered record names, wherever in it (the resident, a birth's parents, a merged number,
    a field of a malformed record): showing the record is a read of each."""
    texts = [raw.decode("utf-8", errors="replace") for raw in (value, key) if raw is not None]
    return citizens_in(*texts)


async def _applied(conn: asyncpg.Connection, event_ids: list[str | None]) -> set[str]:
    """Which of these event IDs the live archive holds (applied)."""
    ids = []
    for raw in event_ids:
        try:
            ids.append(uuid.UUID(raw or ""))
        except ValueError:
            continue
    return await archived_event_ids(conn, ids, LIVE)


def _pretty(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
