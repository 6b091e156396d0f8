"""Consumer grants of the query API: who may read which sections of the resident view, for which purposes, until when.

A grant (CONTRACT §7, §11) is a consumer name, a bearer token, for each purpose it may state the sections it may
read for that purpose, and an optional expiry. A read for a purpose returns that purpose's sections only: a
``statistics`` purpose beside a ``school_enrolment`` one does not see names because enrolment does. The grant
may name one of its purposes for its own view topic (``population.resident_view.v1.<name>``, §11).
Only ``sha256(token)`` is stored; the token itself is shown once, when the grant is
made. Names are never reused — not even after a revocation — because the access log records reads by consumer
name and must stay unambiguous for as long as it is kept.

Used by ``renkou grants add|list|revoke``, by the query API (token lookup) and by anything that provisions
demo or test consumers. Every function takes an open asyncpg connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

import asyncpg

from projections.resident.dates import CHINA_TZ
from projections.resident.render import VIEW_SECTIONS
from projections.resident.tables import named
from services.db import service_tables
from services.tokens import new_token as new_token_with
from services.tokens import token_hash

__all__ = [
    "EXTRA_SECTIONS",
    "GRANTABLE_SECTIONS",
    "TOKEN_PREFIX",
    "Grant",
    "GrantError",
    "GrantStatus",
    "add_grant",
    "end_of_day",
    "find_grant",
    "get_grant",
    "list_grants",
    "new_token",
    "parse_codes",
    "parse_purpose_sections",
    "per_purpose",
    "revoke_grant",
    "validate_name",
    "validate_purposes",
    "validate_sections",
]

_GRANTS: Final = named(service_tables.consumer_grants)

EXTRA_SECTIONS: Final = ("events", "access_log", "eligibility", "statistics")
"""Grantable beyond the view's sections: archived events, a resident's access log, eligibility, statistics."""

GRANTABLE_SECTIONS: Final[tuple[str, ...]] = (*VIEW_SECTIONS, *EXTRA_SECTIONS)
"""Every section a grant may name (CONTRACT §7), in the contract's order."""

TOKEN_PREFIX: Final = "rk_c_"  # noqa: S105 - a prefix, not a secret
"""Consumer tokens start with this, so a leaked one is recognisable (department tokens use ``rk_d_``)."""

GrantStatus = Literal["active", "expired", "revoked"]

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PURPOSE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class GrantError(ValueError):
    """A grant cannot be made, found or revoked; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One consumer's grant as stored (never the token).

    ``purpose_sections``: purpose → the sections readable for it; ``sections`` and ``purposes`` are their union
    and their keys (what a grant covers at all).
    """

    name: str
    purpose_sections: Mapping[str, frozenset[str]]
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None
    view_topic: str | None = None  # the purpose whose sections the consumer's view topic carries

    @property
    def purposes(self) -> frozenset[str]:
        return frozenset(self.purpose_sections)

    @property
    def sections(self) -> frozenset[str]:
        return frozenset().union(*self.purpose_sections.values())

    def sections_for(self, purpose: str) -> frozenset[str]:
        """The sections readable for ``purpose`` (none for a purpose the grant does not cover)."""
        return self.purpose_sections.get(purpose, frozenset())

    def status(self, now: datetime) -> GrantStatus:
        """``revoked`` once revoked, else ``expired`` from ``expires_at`` on, else ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


def new_token() -> str:
    """A fresh consumer token: ``rk_c_`` and 32 random bytes, URL-safe base64."""
    return new_token_with(TOKEN_PREFIX)


def end_of_day(day: date) -> datetime:
    """The instant a grant "valid through ``day``" expires: the next midnight in China."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=CHINA_TZ)


def parse_codes(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (comma-separated, blanks dropped, order kept, duplicates removed)."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        code = part.strip()
        if code:
            seen.setdefault(code, None)
    return list(seen)


def validate_name(name: str) -> str:
    """A consumer name: 1–64 of letters, digits, ``_ . -``, starting with a letter or digit."""
    if not _NAME.fullmatch(name):
        raise GrantError(
            f"consumer name {name!r} must be 1-64 characters of letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return name


def validate_sections(sections: Iterable[str]) -> list[str]:
    """The sections, each one of ``GRANTABLE_SECTIONS``; at least one."""
    chosen = list(dict.fromkeys(sections))
    if not chosen:
        raise GrantError(f"a grant needs at least one section; choose from {', '.join(GRANTABLE_SECTIONS)}")
    unknown = [s for s in chosen if s not in GRANTABLE_SECTIONS]
    if unknown:
        raise GrantError(
            f"unknown section{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"grantable sections are {', '.join(GRANTABLE_SECTIONS)}"
        )
    return chosen


def parse_purpose_sections(specs: Iterable[str]) -> dict[str, list[str]]:
    """``["school_enrolment=identity,education", "statistics=statistics"]`` → purpose → sections, validated;
    a purpose named twice gets the sections of both."""
    chosen: dict[str, list[str]] = {}
    for spec in specs:
        purpose, sep, sections = spec.partition("=")
        if not sep:
            raise GrantError(f"--purpose {spec!r} must read PURPOSE=SECTION,SECTION (e.g. statistics=statistics)")
        (code,) = validate_purposes([purpose.strip()])
        chosen[code] = validate_sections([*chosen.get(code, []), *parse_codes(sections)])
    if not chosen:
        raise GrantError("a grant needs at least one purpose (e.g. --purpose school_enrolment=identity,education)")
    return chosen


def validate_purposes(purposes: Iterable[str]) -> list[str]:
    """Purpose codes chosen by the operator (``school_enrolment``…): lower-case snake case; at least one."""
    chosen = list(dict.fromkeys(purposes))
    if not chosen:
        raise GrantError("a grant needs at least one purpose (e.g. --purposes school_enrolment)")
    bad = [p for p in chosen if not _PURPOSE.fullmatch(p)]
    if bad:
        raise GrantError(
            f"purpose code{'s' if len(bad) > 1 else ''} {', '.join(repr(p) for p in bad)} must be lower-case "
            "snake case (a-z, 0-9, '_'; starting with a letter; at most 64 characters)"
        )
    return chosen


def _grant(row: asyncpg.Record) -> Grant:
    per_purpose = json.loads(row["purpose_sections"])
    return Grant(
        name=row["name"],
        purpose_sections={p: frozenset(s) for p, s in per_purpose.items()},
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        view_topic=row["view_topic"],
    )


_COLUMNS: Final = "name, purpose_sections::text AS purpose_sections, expires_at, created_at, revoked_at, view_topic"


def per_purpose(sections: Iterable[str], purposes: Iterable[str]) -> dict[str, list[str]]:
    """The old form (``--sections … --purposes …``): every section for every purpose, validated."""
    chosen_sections = validate_sections(sections)
    return {purpose: list(chosen_sections) for purpose in validate_purposes(purposes)}


def check_request(
    name: str,
    chosen: Mapping[str, Iterable[str]],
    view_topic: str | None,
    expires_at: datetime | None,
    expires_given: str | None = None,
) -> None:
    """What a new grant must be, whoever asks (the CLI, the console): a valid name, at least one purpose, a view
    topic only for one of its purposes, an expiry in the future and within reason (``expires_given``: the expiry as
    the user wrote it, for the message). ``GrantError`` says what is not."""
    validate_name(name)
    if not chosen:
        raise GrantError("name what it may read: PURPOSE=SECTION,… for at least one purpose")
    if view_topic is not None and view_topic not in chosen:
        raise GrantError(f"view topic {view_topic!r} is not one of its purposes ({', '.join(chosen)})")
    if expires_at is not None:
        given = expires_given or expires_at.isoformat()
        if expires_at.year > 9000:
            raise GrantError(f"expiry {given} is past the year 9000")
        if expires_at <= datetime.now(UTC):
            raise GrantError(f"expiry {given} is in the past")


async def add_grant(
    conn: asyncpg.Connection,
    name: str,
    sections: Iterable[str] = (),
    purposes: Iterable[str] = (),
    expires_at: datetime | None = None,
    *,
    by_purpose: Mapping[str, Iterable[str]] | None = None,
    view_topic: str | None = None,
    token: str | None = None,
    now: datetime | None = None,
) -> str:
    """Store a new grant and return its token (the only time it exists outside the consumer's hands).

    ``by_purpose`` (purpose → sections) or, in the old form, ``sections`` × ``purposes``. ``view_topic``: a
    purpose of the grant whose sections the consumer's own view topic carries. ``token`` may be given (demo
    credentials); by default a fresh one is drawn. Raises ``GrantError`` for an invalid name, section or
    purpose, an expiry that is not in the future, or a name already used.
    """
    validate_name(name)
    if by_purpose is not None:
        chosen = {p: validate_sections(s) for p, s in by_purpose.items()}
        validate_purposes(chosen)
    else:
        chosen = per_purpose(sections, purposes)
    if view_topic is not None and view_topic not in chosen:
        raise GrantError(f"--view-topic {view_topic!r} is not one of the grant's purposes ({', '.join(chosen)})")
    chosen_sections = [s for s in GRANTABLE_SECTIONS if any(s in v for v in chosen.values())]
    chosen_purposes = list(chosen)
    moment = now or datetime.now(UTC)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise GrantError("the expiry needs a UTC offset")
        if expires_at <= moment:
            raise GrantError(f"the expiry {expires_at.isoformat()} is not in the future")
    if view_topic is not None:
        # Kafka refuses a topic whose name differs from another's only by '.' against '_'.
        clash = await conn.fetchval(
            f"SELECT name FROM {_GRANTS} WHERE view_topic IS NOT NULL AND name <> $1 "
            "AND translate(name, '.', '_') = translate($1, '.', '_')",
            name,
        )
        if clash is not None:
            raise GrantError(
                f"the view topic of {name!r} would collide with that of {clash!r} (Kafka treats '.' and '_' alike "
                "in topic names); choose another name"
            )
    secret = token or new_token()
    try:
        await conn.execute(
            f"INSERT INTO {_GRANTS} (name, token_hash, sections, purposes, expires_at, purpose_sections, "
            "view_topic) VALUES ($1, $2, $3::text[], $4::text[], $5, $6::jsonb, $7)",
            name,
            token_hash(secret),
            chosen_sections,
            chosen_purposes,
            expires_at,
            json.dumps(chosen),
            view_topic,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "consumer_grants_pkey":
            existing = await get_grant(conn, name)
            state = f" (revoked {existing.revoked_at:%Y-%m-%d})" if existing and existing.revoked_at else ""
            raise GrantError(
                f"a grant named {name!r} already exists{state}; names are never reused, choose another"
            ) from None
        raise GrantError("that token is already in use by another grant") from None
    return secret


async def get_grant(conn: asyncpg.Connection, name: str) -> Grant | None:
    """The grant named ``name``, whatever its status."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_GRANTS} WHERE name = $1", name)
    return _grant(row) if row is not None else None


async def find_grant(conn: asyncpg.Connection, token: str) -> Grant | None:
    """The grant whose token is ``token``, whatever its status; ``None`` for an unknown token."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_GRANTS} WHERE token_hash = $1", token_hash(token))
    return _grant(row) if row is not None else None


async def list_grants(conn: asyncpg.Connection) -> list[Grant]:
    """Every grant, active or not, by name."""
    return [_grant(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM {_GRANTS} ORDER BY name")]


async def revoke_grant(conn: asyncpg.Connection, name: str) -> Grant:
    """Revoke the grant ``name`` now; its token is refused from the next request on.

    Raises ``GrantError`` if there is no such grant or it was revoked already.
    """
    async with conn.transaction():
        # Query APIs reading from a synchronous standby (CONTRACT §13) check grants there: the commit waits until
        # the standby has applied the revocation, not just stored it, so no read after this returns passes it.
        await conn.execute("SET LOCAL synchronous_commit = remote_apply")
        row = await conn.fetchrow(
            f"UPDATE {_GRANTS} SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}",
            name,
        )
    if row is not None:
        return _grant(row)
    existing = await get_grant(conn, name)
    if existing is None:
        raise GrantError(f"no grant named {name!r} (see renkou grants list)")
    assert existing.revoked_at is not None
    raise GrantError(f"the grant {name!r} was already revoked at {existing.revoked_at.isoformat()}")
