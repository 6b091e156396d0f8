"""Alembic environment: migrations run on a connection handed over by services.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through `renkou infra up` or services.db.migrate.upgrade()")
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
