"""``renkou kafka users add|list|remove``: Kafka principals (SCRAM-SHA-512) and the role each holds (CONTRACT §10).

These talk to the cluster as its admin principal: ``RENKOU_KAFKA_USERNAME`` / ``RENKOU_KAFKA_PASSWORD`` when
set, else the admin credentials ``renkou up`` keeps under the state folder.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import fail
from services.kafka.auth import ADMIN, KafkaCredentials, credentials_for, new_password
from services.kafka.principals import (
    PrincipalError,
    check_name,
    check_role,
    grant_role,
    list_principals,
    remove_user,
    upsert_users,
)
from services.settings import get_settings

console = Console()
users = typer.Typer(help="Kafka principals: SCRAM users with the ACLs of one role.", no_args_is_help=True)


def _admin() -> tuple[str, KafkaCredentials]:
    settings = get_settings()
    admin = credentials_for(settings, ADMIN)
    if admin is None:
        fail(
            f"no Kafka admin credentials: set RENKOU_KAFKA_USERNAME/RENKOU_KAFKA_PASSWORD, or run `renkou up` "
            f"(it keeps them under {settings.state_dir})",
            3,
        )
    return settings.kafka_bootstrap, admin


@users.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The principal's name (its SCRAM username).")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="department:<department>, consumer:<grant name>, gateway, projector, view-relay, auditor or operator.",
        ),
    ],
) -> None:
    """Create a principal with one role and print its password (once: only salted keys are kept by Kafka)."""
    try:
        check_name(name)
        check_role(role)
    except PrincipalError as exc:
        fail(str(exc), 2)
    bootstrap, admin = _admin()
    password = new_password()
    try:
        upsert_users(bootstrap, admin, [(name, password)])
        count = grant_role(bootstrap, admin, [(name, role)], get_settings().topic_namespace)
    except PrincipalError as exc:
        fail(str(exc), 3)
    console.print(f"[green]✓[/green] principal [bold]{name}[/bold] ({role}, {count} ACL bindings); its password:")
    print(password)  # plain: never wrapped by the terminal


@users.command("list")
def list_() -> None:
    """Every principal with the role its ACLs amount to."""
    bootstrap, admin = _admin()
    try:
        principals = list_principals(bootstrap, admin)
    except PrincipalError as exc:
        fail(str(exc), 3)
    table = Table("principal", "role", "ACL bindings")
    for principal in principals:
        role = principal.role or ("super user" if principal.name == ADMIN else "[yellow]custom or none[/yellow]")
        table.add_row(principal.name, role, str(len(principal.acls)))
    console.print(table)


@users.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The principal to remove.")]) -> None:
    """Delete a principal's credential and every ACL binding it holds."""
    if name == ADMIN:
        fail(f"{ADMIN} is the cluster's super user; renkou up needs it", 2)
    bootstrap, admin = _admin()
    try:
        remove_user(bootstrap, admin, name)
    except PrincipalError as exc:
        fail(str(exc), 4 if "no Kafka principal" in str(exc) else 3)
    console.print(f"[green]✓[/green] removed principal [bold]{name}[/bold]")


def register(app: typer.Typer) -> None:
    """Add ``kafka users …`` to the root ``renkou`` app."""
    kafka = typer.Typer(help="Kafka's principals and ACLs.", no_args_is_help=True)
    kafka.add_typer(users, name="users")
    app.add_typer(kafka, name="kafka")
