"""Who is asking, and for what: the bearer token → the consumer's grant, ``X-Purpose`` → a granted purpose.

* no ``Authorization: Bearer`` header, or an unknown token → 401;
* a revoked or expired grant → 401 (the token is no longer a credential);
* no ``X-Purpose`` → 400; a purpose the grant does not list → 403; a section it does not list → 403.

Grants are cached by token hash for ``ttl`` seconds, which saves a round trip per request. The cache cannot
serve a revoked grant's reads: the access-log write re-checks the grant in its own transaction
(``renkou_append_access_log``), and responses that write no log entry (statistics, "not found") re-check it
directly (``Authenticator.confirm``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from uuid import UUID, uuid4

import asyncpg
from fastapi import Request

from projections.resident.tables import named
from services.db import service_tables
from services.grants import Grant
from services.query_api.errors import ApiError
from services.tokens import bearer_of, token_hash

__all__ = ["Authenticator", "Caller", "bearer_token", "refuse_grant"]

_GRANTS: Final = named(service_tables.consumer_grants)


def bearer_token(request: Request, what: str) -> str:
    """The token of the request's ``Authorization: Bearer <token>`` header, or the 401 asking for ``what``."""
    token = bearer_of(request.headers.get("authorization"))
    if token is None:
        raise ApiError(
            401,
            "missing_token",
            f"send the {what} as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated consumer acting for one stated purpose, within one request."""

    grant: Grant
    purpose: str
    request_id: UUID

    @property
    def consumer(self) -> str:
        return self.grant.name

    @property
    def sections(self) -> frozenset[str]:
        """What this request may read: the sections its grant gives its purpose (CONTRACT §11)."""
        return self.grant.sections_for(self.purpose)

    def require(self, section: str) -> None:
        """403 unless the grant covers ``section`` for this request's purpose."""
        if section not in self.sections:
            raise ApiError(
                403,
                "section_not_granted",
                f"the grant of {self.consumer!r} does not include the section {section!r} for the purpose "
                f"{self.purpose!r}",
                {"section": section, "purpose": self.purpose, "granted": sorted(self.sections)},
                consumer=self.consumer,
            )


def refuse_grant(grant: Grant, now: datetime) -> ApiError | None:
    """The 401 for a grant that is revoked or expired at ``now``, else ``None``."""
    status = grant.status(now)
    if status == "revoked":
        return ApiError(401, "token_revoked", f"the grant of {grant.name!r} has been revoked", consumer=grant.name)
    if status == "expired":
        assert grant.expires_at is not None
        return ApiError(
            401,
            "token_expired",
            f"the grant of {grant.name!r} expired at {grant.expires_at.isoformat()}",
            consumer=grant.name,
        )
    return None


class Authenticator:
    """Resolves a request's token and purpose to a ``Caller``, with a short-lived grant cache."""

    def __init__(self, lookup: Callable[[str], Awaitable[Grant | None]], *, ttl: float = 5.0) -> None:
        self._lookup = lookup
        self.ttl = ttl
        self._cache: dict[bytes, tuple[float, Grant]] = {}

    def forget(self, name: str | None = None) -> None:
        """Drop cached grants (of ``name`` only, if given)."""
        if name is None:
            self._cache.clear()
        else:
            self._cache = {k: v for k, v in self._cache.items() if v[1].name != name}

    async def grant_for(self, token: str) -> Grant | None:
        key = token_hash(token)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        grant = await self._lookup(token)
        if grant is None:
            self._cache.pop(key, None)
            return None
        if len(self._cache) > 10_000:  # unbounded growth is not an option; consumers are few
            self._cache.clear()
        self._cache[key] = (now, grant)
        return grant

    async def authenticate(self, request: Request) -> Caller:
        """The ``Caller`` of ``request``, or the ``ApiError`` (401/400/403) that refuses it."""
        token = bearer_token(request, "consumer token")
        grant = await self.grant_for(token)
        if grant is None:
            raise ApiError(
                401, "unknown_token", "the token is not a known consumer token", headers={"WWW-Authenticate": "Bearer"}
            )
        refusal = refuse_grant(grant, datetime.now(UTC))
        if refusal is not None:
            self.forget(grant.name)
            raise refusal
        purpose = (request.headers.get("x-purpose") or "").strip()
        if not purpose:
            raise ApiError(
                400,
                "purpose_required",
                "state the purpose of this request in the X-Purpose header (one of the grant's purposes)",
                consumer=grant.name,
            )
        if purpose not in grant.purposes:
            raise ApiError(
                403,
                "purpose_not_granted",
                f"the grant of {grant.name!r} does not cover the purpose {purpose!r}",
                {"purpose": purpose, "granted": sorted(grant.purposes)},
                consumer=grant.name,
            )
        return Caller(grant=grant, purpose=purpose, request_id=uuid4())

    async def confirm(self, conn: asyncpg.Connection, caller: Caller) -> None:
        """Re-read the caller's grant from the database: 401 if it was revoked or expired since it was cached."""
        row = await conn.fetchrow(f"SELECT revoked_at, expires_at FROM {_GRANTS} WHERE name = $1", caller.consumer)
        if row is None:
            raise ApiError(401, "unknown_token", "the token is not a known consumer token")
        fresh = Grant(
            name=caller.grant.name,
            purpose_sections=caller.grant.purpose_sections,
            expires_at=row["expires_at"],
            created_at=caller.grant.created_at,
            revoked_at=row["revoked_at"],
        )
        refusal = refuse_grant(fresh, datetime.now(UTC))
        if refusal is not None:
            self.forget(caller.consumer)
            raise refusal
