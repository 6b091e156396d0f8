"""Bring a database to the newest schema with Alembic, safely from several processes at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from services.db.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant all processes agree on: serialises concurrent `upgrade` runs (services starting together).
_LOCK_KEY = 0x72656E6B6F75


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply every pending migration to the database at ``url``."""
    engine = make_engine(url, pool_size=1, application_name="renkou-migrate")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None`` before the first migration)."""
    engine = make_engine(url, pool_size=1, application_name="renkou-migrate")
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def main() -> None:
    """``python -m services.db.migrate``: bring ``RENKOU_DATABASE_URL`` (as the owner role) to the newest schema —
    what a deployment runs once before the services start (``infra/k8s``: the ``renkou-migrate`` Job)."""
    import asyncio

    from services.settings import get_settings

    asyncio.run(upgrade(get_settings().database_url.get_secret_value()))


if __name__ == "__main__":
    main()
