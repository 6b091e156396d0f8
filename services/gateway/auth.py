"""Department tokens: ``rk_d_…`` bearer tokens, stored only as SHA-256 hashes in ``department_tokens``."""

from __future__ import annotations

from typing import Final

import asyncpg

from events import DEPARTMENTS
from projections.resident.tables import named
from services.db import service_tables
from services.gateway.errors import ApiError
from services.tokens import bearer_of, token_hash
from services.tokens import new_token as new_token_with

_TOKENS: Final = named(service_tables.department_tokens)

TOKEN_PREFIX = "rk_d_"  # noqa: S105 - a prefix, not a secret
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="renkou gateway"'}


def new_token() -> str:
    """A fresh department token (shown once; only its hash is kept)."""
    return new_token_with(TOKEN_PREFIX)


async def issue_token(conn: asyncpg.Connection, department: str, label: str | None = None) -> str:
    """Create and store a token for ``department``; return the token itself (the only time it exists)."""
    if department not in DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}")
    token = new_token()
    await conn.execute(
        f"INSERT INTO {_TOKENS} (token_hash, department, label) VALUES ($1, $2, $3)",
        token_hash(token),
        department,
        label,
    )
    return token


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or a 401."""
    if not authorization:
        raise ApiError(401, "unauthenticated", "missing Authorization: Bearer <department token>", headers=_CHALLENGE)
    token = bearer_of(authorization)
    if token is None:
        raise ApiError(
            401, "unauthenticated", "the Authorization header must be 'Bearer <department token>'", headers=_CHALLENGE
        )
    return token


async def department_of_token(conn: asyncpg.Connection, token: str) -> str:
    """The department a valid token belongs to, or a 401 (unknown or revoked)."""
    row = await conn.fetchrow(f"SELECT department, revoked_at FROM {_TOKENS} WHERE token_hash = $1", token_hash(token))
    if row is None:
        raise ApiError(401, "invalid_token", "unknown department token", headers=_CHALLENGE)
    if row["revoked_at"] is not None:
        raise ApiError(
            401,
            "invalid_token",
            f"this department token was revoked at {row['revoked_at'].isoformat()}",
            headers=_CHALLENGE,
        )
    return str(row["department"])
