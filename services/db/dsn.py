"""The database URL as asyncpg takes it.

Settings hold SQLAlchemy URLs (``postgresql+asyncpg://…``); the code that talks to asyncpg directly — COPY,
LISTEN, the operator commands, the outbox relay — connects with the same URL minus the driver suffix.
"""

from __future__ import annotations

__all__ = ["asyncpg_dsn"]


def asyncpg_dsn(url: str) -> str:
    """``url`` without SQLAlchemy's ``+driver`` (``postgresql+asyncpg://`` → ``postgresql://``); others unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep or "+" not in scheme:
        return url
    return f"{scheme.split('+', 1)[0]}://{rest}"
