"""What every benchmark needs: a free loopback port, a fresh migrated database of its own, and the cleanup."""

from __future__ import annotations

import uuid

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from services.db.migrate import upgrade
from services.infra.ports import free_port

__all__ = ["delete_namespace_topics", "drop_database", "free_port", "fresh_database"]


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


async def delete_namespace_topics(bootstrap: str, namespace: str) -> None:
    """Delete every topic whose name starts with the benchmark's ``namespace`` (its published log)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
