"""What every benchmark needs: a free loopback port and a fresh, migrated database of its own."""

from __future__ import annotations

import uuid

import asyncpg

from services.db.migrate import upgrade
from services.infra.ports import free_port

__all__ = ["drop_database", "free_port", "fresh_database"]


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


async def fresh_database(base_url: str, label: str = "bench") -> str:
    """Create ``renkou_<label>_<random>`` beside ``base_url``'s database, migrate it, return its URL."""
    name = f"renkou_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_admin_dsn(base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    await upgrade(url)
    return url


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (connections to it are terminated)."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
