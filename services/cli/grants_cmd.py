"""``renkou grants add|list|revoke``: the query API's consumer grants (CONTRACT §7, §8).

``add`` prints the new token once, alone on stdout (so ``TOKEN=$(renkou grants add …)`` works), and a reminder
on stderr; only its SHA-256 is stored. Names are never reused, so the access log stays unambiguous.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from events import consumer_view_topic
from projections.resident.dates import CHINA_TZ
from services.cli.common import database, err, fail, print_json, run
from services.grants import (
    GRANTABLE_SECTIONS,
    Grant,
    GrantError,
    add_grant,
    check_request,
    end_of_day,
    list_grants,
    parse_codes,
    parse_purpose_sections,
    per_purpose,
    revoke_grant,
    validate_name,
    validate_sections,
)
from services.settings import get_settings

app = typer.Typer(help="Consumer grants of the query API: sections × purposes × expiry.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``grants`` sub-app to the root ``renkou`` app."""
    root.add_typer(app, name="grants")


def _expiry(raw: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (valid through that day, China time) or an RFC 3339 instant with offset."""
    if raw is None:
        return None
    text = raw.strip()
    if len(text) == 10:
        try:
            return end_of_day(date.fromisoformat(text))
        except OverflowError:
            fail(f"--expires {raw!r} is past the year 9000", 2)
        except ValueError:
            pass
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                fail(f"--expires {raw!r} has no UTC offset (e.g. 2027-01-01T00:00:00+08:00)", 2)
            return moment
    fail(f"--expires {raw!r} is not a date (YYYY-MM-DD) or an RFC 3339 instant with offset", 2)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The consumer's name (letters, digits, _ . -), never reused.")],
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help="PURPOSE=SECTION,SECTION: what it may read for that purpose (repeat for each purpose); sections "
            f"from: {', '.join(GRANTABLE_SECTIONS)}.",
        ),
    ] = None,
    sections: Annotated[
        str | None, typer.Option("--sections", help="The old form: these sections for every one of --purposes.")
    ] = None,
    purposes: Annotated[
        str | None, typer.Option("--purposes", help="The old form: comma-separated purpose codes.")
    ] = None,
    view_topic: Annotated[
        str | None,
        typer.Option(
            "--view-topic",
            help="One of its purposes: the consumer gets population.resident_view.v1.<NAME> with that purpose's "
            "sections.",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Valid through this date (YYYY-MM-DD, China time) or until an instant."),
    ] = None,
) -> None:
    """Grant a consumer sections per purpose; print its new token (shown this once only)."""
    try:
        validate_name(name)
    except GrantError as exc:
        fail(str(exc), 2)
    expires_at = _expiry(expires)
    try:
        chosen: dict[str, list[str]] = {}
        if purpose:
            chosen = parse_purpose_sections(purpose)
        if sections is not None or purposes is not None:
            if sections is None or purposes is None:
                raise GrantError("the old form needs both --sections and --purposes")
            for code, granted in per_purpose(parse_codes(sections), parse_codes(purposes)).items():
                chosen[code] = validate_sections([*chosen.get(code, []), *granted])
        if not chosen:
            raise GrantError("name what it may read: --purpose PURPOSE=SECTION,… (or --sections … --purposes …)")
        if view_topic is not None and view_topic not in chosen:
            raise GrantError(f"--view-topic {view_topic!r} is not one of its purposes ({', '.join(chosen)})")
        check_request(name, chosen, view_topic, expires_at, f"--expires {expires}")
    except GrantError as exc:
        fail(str(exc), 2)

    async def go() -> str:
        async with database() as conn:
            return await add_grant(conn, name, expires_at=expires_at, by_purpose=chosen, view_topic=view_topic)

    try:
        token = run(go())
    except GrantError as exc:
        fail(str(exc), 1)
    print(token)
    until = f" until {expires_at.isoformat()}" if expires_at else ""
    what = "; ".join(f"{p}: {', '.join(s)}" for p, s in chosen.items())
    topic = f"; view topic for {view_topic}" if view_topic else ""
    err.print(f"granted {name!r} — {what}{topic}{until}. Store the token now: it is not shown again.")
    if view_topic:
        settings = get_settings()
        err.print(
            f"The view relay fills {settings.topic_namespace}{consumer_view_topic(name)} with the {view_topic} "
            f"sections; its reader: renkou kafka users add {name} --role consumer:{name}"
        )


def _china(moment: datetime | None) -> str | None:
    # Operators read times in China's time zone, like every business date in renkou.
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds") if moment is not None else None


def _row(grant: Grant, now: datetime) -> dict[str, object]:
    return {
        "name": grant.name,
        "status": grant.status(now),
        "purposes": {
            purpose: [s for s in GRANTABLE_SECTIONS if s in granted]
            for purpose, granted in sorted(grant.purpose_sections.items())
        },
        "view_topic": grant.view_topic,
        "expires_at": _china(grant.expires_at),
        "created_at": _china(grant.created_at),
        "revoked_at": _china(grant.revoked_at),
    }


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every grant with its status (active, expired, revoked); tokens are never shown."""

    async def go() -> list[Grant]:
        async with database() as conn:
            return await list_grants(conn)

    grants = run(go())
    now = datetime.now(UTC)
    rows = [_row(g, now) for g in grants]
    if as_json:
        print_json(rows)
        return
    if not rows:
        err.print("no grants yet (renkou grants add NAME --purpose PURPOSE=SECTION,...)")
        return
    table = Table("name", "status", "purpose → sections", "view topic", "expires", "created")
    for grant, r in zip(grants, rows, strict=True):
        table.add_row(
            grant.name,
            str(r["status"]),
            "\n".join(
                f"{purpose} → {', '.join(s for s in GRANTABLE_SECTIONS if s in granted)}"
                for purpose, granted in sorted(grant.purpose_sections.items())
            ),
            grant.view_topic or "-",
            str(r["expires_at"] or "never"),
            str(r["created_at"])[:19],
        )
    Console(soft_wrap=True).print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The consumer's name.")]) -> None:
    """Revoke a grant now: its token is refused from the next request on."""

    async def go() -> Grant:
        async with database() as conn:
            return await revoke_grant(conn, name)

    try:
        grant = run(go())
    except GrantError as exc:
        fail(str(exc), 1)
    assert grant.revoked_at is not None
    err.print(f"revoked {grant.name!r} at {_china(grant.revoked_at)}")
