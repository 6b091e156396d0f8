"""PostgreSQL by least privilege (CONTRACT §10), checked by the real server for every service's login role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.db.dsn import asyncpg_dsn
from services.db.roles import LOGIN_ROLES, OWNER, PROJECTOR, QUERY_API, SERVICE_ROLES, stored_password, with_credentials
from tests.support.infra import Endpoints

pytestmark = pytest.mark.integration

APPEND_ONLY = ("projection.event_archive", "public.access_log", "public.access_log_heads")


async def _connect(infra: Endpoints, database_url: str, role: str) -> asyncpg.Connection:
    password = stored_password(infra.state_dir, role)
    if password is None:
        pytest.skip(f"no stored password for {role} (roles made outside this test stack)")
    return await asyncpg.connect(asyncpg_dsn(with_credentials(database_url, role, password)))


@pytest.fixture
async def superuser(infra: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(infra.superuser_url))
    yield conn
    await conn.close()


async def test_no_login_role_is_privileged(superuser: asyncpg.Connection) -> None:
    rows = await superuser.fetch(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
        "FROM pg_roles WHERE rolname = ANY($1::text[])",
        list(LOGIN_ROLES),
    )
    assert {r["rolname"] for r in rows} == set(LOGIN_ROLES)
    for row in rows:
        assert not any(row[k] for k in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls"))


async def test_passwords_only_never_trust(superuser: asyncpg.Connection, infra: Endpoints) -> None:
    if infra.mode != "local":
        pytest.skip("pg_hba.conf is the local launcher's")
    methods = {r["auth_method"] for r in await superuser.fetch("SELECT auth_method FROM pg_hba_file_rules")}
    assert methods == {"scram-sha-256"}


async def test_the_archive_and_the_access_log_belong_to_the_owner(database_url: str, infra: Endpoints) -> None:
    conn = await _connect(infra, database_url, OWNER)
    try:
        owners = {
            f"{r['schemaname']}.{r['tablename']}": r["tableowner"]
            for r in await conn.fetch("SELECT schemaname, tablename, tableowner FROM pg_tables")
        }
    finally:
        await conn.close()
    assert {owners[t] for t in APPEND_ONLY} == {OWNER}
    assert not set(owners.values()) & set(SERVICE_ROLES)


@pytest.mark.parametrize("role", SERVICE_ROLES)
async def test_no_service_can_rewrite_the_archive_or_the_access_log(
    role: str, database_url: str, infra: Endpoints
) -> None:
    conn = await _connect(infra, database_url, role)
    try:
        for table in APPEND_ONLY:
            column = "chain_seq" if table != "public.access_log_heads" else "citizen_id"
            for statement in (
                f"UPDATE {table} SET {column} = {column}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
                f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET session_replication_role = replica")
        # Nor write the access log around its append functions.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO public.access_log (citizen_id, chain_seq, request_id, consumer, purpose, sections, "
                "endpoint, accessed_at, body, prev_hash, hash) VALUES ('X', 1, gen_random_uuid(), 'c', 'p', '{}', "
                "'e', now(), '', '', '')"
            )
    finally:
        await conn.close()


async def test_each_service_holds_what_it_needs(database_url: str, infra: Endpoints) -> None:
    projector = await _connect(infra, database_url, PROJECTOR)
    query_api = await _connect(infra, database_url, QUERY_API)
    try:
        # The projector appends to the archive and rewrites sections; the query API only reads them.
        assert await projector.fetchval("SELECT has_table_privilege('projection.event_archive', 'INSERT')")
        assert await projector.fetchval("SELECT has_table_privilege('projection.sections', 'UPDATE')")
        assert not await query_api.fetchval("SELECT has_table_privilege('projection.sections', 'UPDATE')")
        assert await query_api.fetchval("SELECT has_table_privilege('projection.sections', 'SELECT')")
        assert not await projector.fetchval("SELECT has_table_privilege('public.consumer_grants', 'SELECT')")
        assert await query_api.fetchval(
            "SELECT has_function_privilege('renkou_access_log_append(text, bytea, uuid, text, text, text[], text, "
            "timestamptz)', 'EXECUTE')"
        )
        assert not await projector.fetchval(
            "SELECT has_function_privilege('renkou_access_log_append(text, bytea, uuid, text, text, text[], text, "
            "timestamptz)', 'EXECUTE')"
        )
    finally:
        await projector.close()
        await query_api.close()
