"""PostgreSQL by least privilege (CONTRACT §10): one login role per service, an owner no service uses.

=====================  ================================================================================
``renkou``             owns every table, trigger and function; runs migrations, ``replay``, ``verify``,
                       ``swap`` and ``drop-schema`` (schema changes); no long-running service holds it
``renkou_gateway``     reads department tokens; records the idempotency of accepted events
``renkou_projector``   reads the projection; appends to the archive (INSERT only), writes every other
                       projection table
``renkou_query_api``   reads the projection, grants and access log; appends to the access log only
                       through ``SECURITY DEFINER`` functions owned by ``renkou``
``renkou_view_relay``  reads the projection; empties the view outbox
``renkou_operator``    the ``renkou`` CLI's everyday role: reads everything, manages grants and tokens,
                       marks dead letters re-driven
=====================  ================================================================================

None is a superuser; none can UPDATE, DELETE or TRUNCATE the archive or the access log, alter or disable
their triggers, or set ``session_replication_role`` (a superuser's setting). The grants themselves live in
the migrations (``0009_least_privilege``); this module creates the roles and says how a process finds its
own credentials: the password ``renkou up`` stored in ``<state_dir>/secrets/postgres/<role>.json`` (mode
0600), put into ``RENKOU_DATABASE_URL`` in place of whatever credentials it names. Without a stored password
the URL is used as it is (a deployment that gives each service its own ``RENKOU_DATABASE_URL``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from services.kafka.auth import new_password, write_private

if TYPE_CHECKING:
    import asyncpg

    from services.settings import Settings

SUPERUSER = "postgres"  # the cluster's bootstrap superuser (initdb): creates roles and databases, nothing else
OWNER = "renkou"
GATEWAY = "renkou_gateway"
PROJECTOR = "renkou_projector"
QUERY_API = "renkou_query_api"
VIEW_RELAY = "renkou_view_relay"
OPERATOR = "renkou_operator"
SERVICE_ROLES = (GATEWAY, PROJECTOR, QUERY_API, VIEW_RELAY, OPERATOR)
LOGIN_ROLES = (OWNER, *SERVICE_ROLES)


def secrets_dir(state_dir: Path) -> Path:
    return state_dir / "secrets" / "postgres"


def stored_password(state_dir: Path, role: str) -> str | None:
    """The password ``renkou up`` keeps for ``role``, or None."""
    try:
        return str(json.loads((secrets_dir(state_dir) / f"{role}.json").read_text())["password"])
    except FileNotFoundError:
        return None


def save_password(state_dir: Path, role: str, password: str) -> None:
    """Keep ``role``'s password under the state folder (mode 0600 in a 0700 folder)."""
    directory = secrets_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    write_private(directory / f"{role}.json", json.dumps({"role": role, "password": password}) + "\n")


def ensure_password(state_dir: Path, role: str) -> str:
    """``role``'s stored password, created (random, 256 bits) when there is none."""
    password = stored_password(state_dir, role)
    if password is None:
        password = new_password()
        save_password(state_dir, role, password)
    return password


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` (a SQLAlchemy or libpq URL) with ``user:password`` in place of the credentials it had."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def url_for(settings: Settings, role: str, *, reads: bool = False) -> str:
    """The database URL a process acting as ``role`` connects with (see the module's doc); with ``reads``, where
    its reads go: ``RENKOU_READ_DATABASE_URL`` (a standby, CONTRACT §13) when set, else the same primary."""
    chosen = settings.read_database_url if reads and settings.read_database_url is not None else settings.database_url
    url = chosen.get_secret_value()
    password = stored_password(settings.state_dir, role)
    return url if password is None else with_credentials(url, role, password)


async def ensure_roles(conn: asyncpg.Connection, state_dir: Path) -> list[str]:
    """Create the login roles that do not exist (as the superuser on ``conn``) and set every role's password
    to the stored one; return the roles created now."""
    created = []
    for role in LOGIN_ROLES:
        attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
        if await ensure_login(conn, role, ensure_password(state_dir, role), attributes):
            created.append(role)
    return created


async def ensure_login(conn: asyncpg.Connection, role: str, password: str, attributes: str) -> bool:
    """Create (or bring back to) login ``role`` with ``attributes`` (fixed SQL keywords) and ``password``, as the
    superuser on ``conn``; return whether it was created now."""
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Utility statements take no parameters: quote with PostgreSQL's own format() (%I identifier, %L literal).
    statement = await conn.fetchval(
        f"SELECT format('{verb} ROLE %I WITH LOGIN {attributes} PASSWORD %L', $1::text, $2::text)", role, password
    )
    await conn.execute(statement)
    return not exists


async def create_database(conn: asyncpg.Connection, name: str) -> bool:
    """Create database ``name`` owned by the owner role (as the superuser on ``conn``); False if it existed."""
    if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        return False
    await conn.execute(
        await conn.fetchval("SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)", name, OWNER)
    )
    return True
