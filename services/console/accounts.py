"""Console accounts (CONTRACT §14): operators and auditors, their argon2id password hashes, and what each may do.

``renkou operators add NAME --role operator|auditor`` makes an account and prints its password once; only the
hash is stored (argon2-cffi's defaults, RFC 9106's second recommended profile). Accounts are written as the owner
role; the console reads them as the operator role and cannot change them (migration 0019).

An **operator** may do everything the console offers; an **auditor** may look at everything and change nothing:
no re-drive, no replay, verify or swap, no grant added or revoked.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from projections.resident.tables import named
from services.db import service_tables

__all__ = [
    "ROLES",
    "Account",
    "AccountError",
    "add_account",
    "authenticate",
    "list_accounts",
    "may_change",
    "remove_account",
    "validate_account_name",
]

_ACCOUNTS: Final = named(service_tables.console_accounts)

Role = Literal["operator", "auditor"]
ROLES: Final[tuple[Role, ...]] = ("operator", "auditor")
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_.-]{1,62}")

_hasher: Final = PasswordHasher()
_DUMMY_HASH: Final = _hasher.hash("an account that does not exist")
"""Checked against when the name is unknown, so that a wrong name takes as long as a wrong password."""


class AccountError(ValueError):
    """A bad name or role, an account that exists already or does not exist; ``str`` is one line."""


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    created_at: datetime


def validate_account_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise AccountError(
            f"account name {name!r} must be 2-63 characters: a lower-case letter, then letters, digits, '_', '.', '-'"
        )
    return name


def may_change(role: str) -> bool:
    """Whether ``role`` may act (re-drive, replay, verify, swap, grants), not only look."""
    return role == "operator"


def new_password() -> str:
    """A random password of 128 bits, in 22 URL-safe characters (printed once, never stored)."""
    return secrets.token_urlsafe(16)


async def add_account(conn: asyncpg.Connection, name: str, role: str) -> str:
    """Create ``name`` with ``role`` and a new password; return the password (only its hash is kept)."""
    validate_account_name(name)
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    password = new_password()
    digest = await asyncio.to_thread(_hasher.hash, password)
    try:
        await conn.execute(
            f"INSERT INTO {_ACCOUNTS} (name, role, password_hash) VALUES ($1, $2, $3)", name, role, digest
        )
    except asyncpg.UniqueViolationError:
        raise AccountError(f"account {name!r} exists already (remove it first to give it a new password)") from None
    return password


async def remove_account(conn: asyncpg.Connection, name: str) -> None:
    if await conn.fetchval(f"DELETE FROM {_ACCOUNTS} WHERE name = $1 RETURNING name", name) is None:
        raise AccountError(f"no account named {name!r}")


async def list_accounts(conn: asyncpg.Connection) -> list[Account]:
    rows = await conn.fetch(f"SELECT name, role, created_at FROM {_ACCOUNTS} ORDER BY name")
    return [Account(r["name"], r["role"], r["created_at"]) for r in rows]


async def find_account(conn: asyncpg.Connection, name: str) -> Account | None:
    """The account named ``name`` as it is now, or None (removed, or never made)."""
    row = await conn.fetchrow(f"SELECT name, role, created_at FROM {_ACCOUNTS} WHERE name = $1", name)
    return None if row is None else Account(row["name"], row["role"], row["created_at"])


async def authenticate(conn: asyncpg.Connection, name: str, password: str) -> Account | None:
    """The account when ``password`` is its password; None otherwise (unknown name or wrong password alike)."""
    row = await conn.fetchrow(f"SELECT name, role, password_hash, created_at FROM {_ACCOUNTS} WHERE name = $1", name)
    stored = _DUMMY_HASH if row is None else row["password_hash"]
    try:
        await asyncio.to_thread(_hasher.verify, stored, password)  # a fraction of a second of CPU: off the event loop
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return Account(row["name"], row["role"], row["created_at"])
