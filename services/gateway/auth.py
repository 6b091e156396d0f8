"""Department tokens: ``rk_d_…`` bearer tokens, stored only as SHA-256 hashes in ``department_tokens``."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from events import DEPARTMENTS
from services.gateway.errors import ApiError

TOKEN_PREFIX = "rk_d_"  # noqa: S105 - a prefix, not a secret
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="renkou gateway"'}


def token_hash(token: str) -> bytes:
    """The stored form of a token (the rule every renkou token follows)."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A fresh department token (shown once; only its hash is kept)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def issue_token(conn: asyncpg.Connection, department: str, label: str | None = None) -> str:
    """Create and store a token for ``department``; return the token itself (the only time it exists)."""
    if department not in DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}")
    token = new_token()
    await conn.execute(
        "INSERT INTO department_tokens (token_hash, department, label) VALUES ($1, $2, $3)",
        token_hash(token),
        department,
        label,
    )
    return token


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or a 401."""
    if not authorization:
        raise ApiError(401, "unauthenticated", "missing Authorization: Bearer <department token>", headers=_CHALLENGE)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "unauthenticated", "the Authorization header must be 'Bearer <department token>'", headers=_CHALLENGE
        )
    return token


async def department_of_token(conn: asyncpg.Connection, token: str) -> str:
    """The department a valid token belongs to, or a 401 (unknown or revoked)."""
    row = await conn.fetchrow(
        "SELECT department, revoked_at FROM department_tokens WHERE token_hash = $1", token_hash(token)
    )
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
