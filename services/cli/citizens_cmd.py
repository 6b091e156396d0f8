"""``renkou citizens token|rotate-key``: the local identity provider that demos and tests log citizens in with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from services.cli.common import citizen_id_arg, fail
from services.identity import local_idp
from services.settings import get_settings

console = Console(stderr=True)
citizens = typer.Typer(
    help="Citizens' logins from the local identity provider (demos and tests).", no_args_is_help=True
)


@citizens.command("token")
def token(
    citizen_id: Annotated[str, typer.Argument(help="The citizen the token is for.")],
    minutes: Annotated[int, typer.Option("--minutes", min=1, max=24 * 60, help="How long it is valid.")] = 60,
) -> None:
    """Print an OpenID Connect ID token for a citizen (`Authorization: Bearer …` on /v1/me)."""
    settings = get_settings()
    if settings.citizen_oidc_jwks is not None:
        fail("RENKOU_CITIZEN_OIDC_JWKS names the city's identity provider: log in there, not here", 2)
    try:
        issued = local_idp.issue(
            settings.state_dir,
            citizen_id_arg(citizen_id),
            minutes=minutes,
            issuer=settings.citizen_oidc_issuer,
            audience=settings.citizen_oidc_audience,
            claim=settings.citizen_id_claim,
        )
    except FileNotFoundError as exc:
        fail(str(exc), 3)
    print(issued)


@citizens.command("rotate-key")
def rotate_key() -> None:
    """Start signing with a new key; tokens signed with the previous ones stay valid until they expire."""
    kid = local_idp.rotate_key(get_settings().state_dir)
    console.print(f"[green]✓[/green] the local identity provider now signs with key {kid}")


def register(app: typer.Typer) -> None:
    """Add ``citizens …`` to the root ``renkou`` app."""
    app.add_typer(citizens, name="citizens")
