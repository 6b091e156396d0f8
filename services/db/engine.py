"""Async SQLAlchemy engines; created on demand, never at import time."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "renkou") -> AsyncEngine:
    """An asyncpg-backed engine for ``url`` with the settings every renkou service uses."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application_name, "timezone": "UTC"}},
    )
