"""The demo's credentials, made once by ``renkou run`` and printed by ``renkou demo-tokens``: the demo consumer's
grant and token, one gateway token and one Kafka principal per department, the consumer's own view topic reader,
the console's operator and auditor accounts — kept in the stack's state folder (``demo-tokens.json``), only their
hashes in the database and salted keys in Kafka."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

import asyncpg
import typer
from rich.console import Console

from events import DEPARTMENTS, consumer_view_topic
from projections.resident.tables import named
from services.cli.common import fail
from services.db import roles as db_roles
from services.db import service_tables
from services.gateway.auth import issue_token
from services.grants import add_grant, find_grant
from services.kafka.auth import (
    DEMO_CONSUMER,
    MECHANISM,
    demo_department_principal,
    stored_credentials,
    write_private,
)
from services.settings import Settings, get_settings
from services.tokens import token_hash

_ACCOUNTS: Final = named(service_tables.console_accounts)
_GRANTS: Final = named(service_tables.consumer_grants)
_TOKENS: Final = named(service_tables.department_tokens)

console = Console(highlight=False)

# What the demo consumer may read, purpose by purpose (CONTRACT §11): a school bureau enrolling pupils, its
# statistics office, its auditors. Its view topic carries the enrolment purpose's sections.
DEMO_GRANT: dict[str, tuple[str, ...]] = {
    "school_enrolment": ("identity", "hukou", "residence", "education", "family", "flags", "meta", "eligibility"),
    "statistics": ("statistics",),
    "audit": ("identity", "events", "access_log", "meta"),
}
DEMO_VIEW_TOPIC = "school_enrolment"


def demo_tokens_path(settings: Settings) -> Path:
    """Where ``make run`` keeps the demo's plaintext tokens (mode 600): only their hashes are in the database."""
    return settings.state_dir / "demo-tokens.json"


def gateway_url(settings: Settings) -> str:
    return settings.local_url(settings.gateway_port)


def query_api_url(settings: Settings) -> str:
    return settings.local_url(settings.query_api_port)


# --- demo credentials ---------------------------------------------------------------------------------------------


async def ensure_demo_credentials(conn: asyncpg.Connection, settings: Settings) -> dict[str, Any]:
    """The demo consumer grant and one gateway token per department: reused while still valid, else made anew;
    written to ``demo-tokens.json`` (mode 600) and returned."""
    path = demo_tokens_path(settings)
    known: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(path.read_text())
    consumer = await _demo_consumer(conn, known.get("consumer", {}).get("token"))
    departments: dict[str, str] = {}
    for department in DEPARTMENTS:
        token = known.get("departments", {}).get(department)
        if not (isinstance(token, str) and await _department_token_valid(conn, token, department)):
            token = await issue_token(conn, department, "demo (make run)")
        departments[department] = token
    credentials = {
        "consumer": consumer,
        "departments": departments,
        "query_api": query_api_url(settings),
        "gateway": gateway_url(settings),
        "kafka": _demo_kafka_credentials(settings),
        "console": await _demo_console(settings, known.get("console")),
    }
    write_private(path, json.dumps(credentials, indent=2) + "\n")
    return credentials


DEMO_ACCOUNTS = (("demo-operator", "operator"), ("demo-auditor", "auditor"))


async def _demo_console(settings: Settings, known: object) -> dict[str, Any]:
    """The console's address and the demo's operator and auditor accounts: kept while their stored passwords still
    log in, else made anew (as the owner role, like `renkou operators add`)."""
    from services.console.accounts import add_account, authenticate, remove_account
    from services.operations.base import database as database_as

    stored = known.get("accounts", {}) if isinstance(known, dict) else {}
    accounts: dict[str, dict[str, str]] = {}
    async with database_as(settings, application_name="renkou-demo", role=db_roles.OWNER) as owner:
        for name, role in DEMO_ACCOUNTS:
            password = (stored.get(name) or {}).get("password") if isinstance(stored, dict) else None
            if not (isinstance(password, str) and await authenticate(owner, name, password)):
                if await owner.fetchval(f"SELECT 1 FROM {_ACCOUNTS} WHERE name = $1", name):
                    await remove_account(owner, name)
                password = await add_account(owner, name, role)
            accounts[name] = {"role": role, "password": password}
    return {"url": settings.local_url(settings.console_port), "accounts": accounts}


def _demo_kafka_credentials(settings: Settings) -> dict[str, Any]:
    """The demo departments' Kafka principals (SCRAM-SHA-512) that `renkou up` created, for the publisher SDK, and
    the demo consumer's, which reads its own view topic."""
    principals = {}
    for department in DEPARTMENTS:
        stored = stored_credentials(settings.state_dir, demo_department_principal(department))
        if stored is not None:
            principals[department] = {"username": stored.username, "password": stored.password}
    credentials: dict[str, Any] = {
        "bootstrap": settings.kafka_bootstrap,
        "mechanism": MECHANISM,
        "departments": principals,
    }
    consumer = stored_credentials(settings.state_dir, DEMO_CONSUMER)
    if consumer is not None:
        credentials["consumer"] = {
            "username": consumer.username,
            "password": consumer.password,
            "topic": settings.topic_namespace + consumer_view_topic(DEMO_CONSUMER),
        }
    return credentials


async def _demo_consumer(conn: asyncpg.Connection, token: object) -> dict[str, Any]:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    if isinstance(token, str):
        grant = await find_grant(conn, token)
        if grant is not None and grant.name == DEMO_CONSUMER and grant.status(datetime.now(UTC)) == "active":
            return _consumer_entry(token, grant.expires_at)
    async with conn.transaction():
        if await conn.fetchval(f"SELECT 1 FROM {_GRANTS} WHERE name = $1", DEMO_CONSUMER):
            # The plaintext was lost (state folder wiped) or the grant lapsed: reissue the demo's own grant rather
            # than invent a new consumer name each time (names are never reused for another consumer).
            from services.grants import new_token

            token = new_token()
            sections = sorted({s for chosen in DEMO_GRANT.values() for s in chosen})
            await conn.execute(
                f"UPDATE {_GRANTS} SET token_hash = $2, sections = $3::text[], purposes = $4::text[], "
                "purpose_sections = $5::jsonb, view_topic = $6, expires_at = $7, revoked_at = NULL WHERE name = $1",
                DEMO_CONSUMER,
                token_hash(token),
                sections,
                list(DEMO_GRANT),
                json.dumps(DEMO_GRANT),
                DEMO_VIEW_TOPIC,
                expires,
            )
        else:
            token = await add_grant(
                conn, DEMO_CONSUMER, expires_at=expires, by_purpose=DEMO_GRANT, view_topic=DEMO_VIEW_TOPIC
            )
    return _consumer_entry(token, expires)


def _consumer_entry(token: str, expires: datetime | None) -> dict[str, Any]:
    return {
        "name": DEMO_CONSUMER,
        "token": token,
        "purposes": {purpose: list(sections) for purpose, sections in DEMO_GRANT.items()},
        "expires_at": expires.isoformat() if expires else None,
    }


async def _department_token_valid(conn: asyncpg.Connection, token: str, department: str) -> bool:
    found = await conn.fetchval(
        f"SELECT department FROM {_TOKENS} WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token)
    )
    return bool(found == department)


def demo_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="The credentials file as JSON.")] = False,
) -> None:
    """Print the demo credentials `make run` created: the query API consumer token, the gateway tokens."""
    settings = get_settings()
    path = demo_tokens_path(settings)
    try:
        credentials = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"no demo credentials yet ({path} does not exist): `make run` creates them", 4)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}", 4)
    if as_json:
        print(json.dumps(credentials, indent=2))
        return
    consumer = credentials["consumer"]
    console.print(
        f"[bold]query API[/bold] {credentials['query_api']} — consumer [bold]{consumer['name']}[/bold] until "
        f"{consumer['expires_at']}, purpose → sections:"
    )
    for purpose, sections in consumer["purposes"].items():
        console.print(f"  {purpose}: {', '.join(sections)}")
    print(f"  {consumer['token']}")
    console.print(f"[bold]gateway[/bold] {credentials['gateway']} — one token per department:")
    for department, token in credentials["departments"].items():
        # Plain print: a token must never be wrapped or folded by the terminal width.
        print(f"  {department:<16} {token}")
    web = credentials.get("console")
    if web:
        console.print(f"[bold]console[/bold] {web['url']}/ — accounts (citizens log in at {web['url']}/me):")
        for name, account in web["accounts"].items():
            print(f"  {account['role']:<16} {name} {account['password']}")
    kafka = credentials.get("kafka") or {"departments": {}}
    if kafka["departments"]:
        console.print(
            f"[bold]Kafka[/bold] {kafka['bootstrap']} ({kafka['mechanism']}) — one principal per department, "
            "each may write only its own topic:"
        )
        for department, principal in kafka["departments"].items():
            print(f"  {department:<16} {principal['username']} {principal['password']}")
    if kafka.get("consumer"):
        reader = kafka["consumer"]
        console.print(
            f"[bold]Kafka[/bold] the consumer's own view topic {reader['topic']} ({DEMO_VIEW_TOPIC} sections):"
        )
        print(f"  {'consumer':<16} {reader['username']} {reader['password']}")
    console.print(f"(from {path}; only the tokens' hashes are in the database, and Kafka keeps salted keys)")
