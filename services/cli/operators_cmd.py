"""``renkou operators add|list|remove``: the console's operator and auditor accounts (CONTRACT §14).

An account is an administrator's act: these commands connect as the owner role, which the console itself never
holds (it can read accounts, not make them).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import fail, print_json
from services.cli.ops_cmd import run_operation
from services.console.accounts import ROLES, Account, AccountError, add_account, list_accounts, remove_account
from services.db.roles import OWNER
from services.operations.base import database
from services.settings import get_settings

err = Console(stderr=True, highlight=False)
app = typer.Typer(help="The web console's accounts: operators (act) and auditors (look).", no_args_is_help=True)


def _as_owner() -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A connection as the owner role: only an administrator's command makes or removes an account."""
    return database(get_settings(), application_name="renkou-operators", role=OWNER)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The account's name (lower-case letters, digits, _ . -).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
) -> None:
    """Create an account and print its password once (only an argon2id hash is stored)."""

    async def go() -> str:
        async with _as_owner() as conn:
            return await add_account(conn, name, role)

    try:
        password = run_operation(go())
    except AccountError as exc:
        fail(str(exc), 2)
    print(password)
    console = get_settings().local_url(get_settings().console_port)
    err.print(f"{role} {name!r} created; log in at {console}/login. Store the password now: it is not shown again.")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every account with its role (never a password or its hash)."""

    async def go() -> list[Account]:
        async with _as_owner() as conn:
            return await list_accounts(conn)

    accounts = run_operation(go())
    if as_json:
        print_json([{"name": a.name, "role": a.role, "created_at": a.created_at.isoformat()} for a in accounts])
        return
    table = Table("name", "role", "created")
    for a in accounts:
        table.add_row(a.name, a.role, a.created_at.isoformat(timespec="seconds"))
    Console().print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The account to remove.")]) -> None:
    """Remove an account; its sessions end at their next request."""

    async def go() -> None:
        async with _as_owner() as conn:
            await remove_account(conn, name)

    try:
        run_operation(go())
    except AccountError as exc:
        fail(str(exc), 4)
    err.print(f"removed {name!r}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="operators")
