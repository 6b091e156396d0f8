"""Least privilege (CONTRACT §10): what each service's login role may do, and nothing more.

The roles are made by the stack (``services.db.roles``), before any migration runs; a migration run by a role
that may create roles (a superuser's, in a deployment without ``renkou up``) creates missing ones without a
login, for the operator to give passwords to. Nothing here is granted to PUBLIC.

- ``renkou_grant_projection(schema)`` holds the privilege matrix of a projection schema in one place: the live
  ``projection`` now, and every shadow that ``replay`` creates (a swap then brings the shadow's grants along):
  SELECT for the services that read it; for the projector INSERT only on ``event_archive`` and INSERT, UPDATE,
  DELETE on every other table; DELETE on ``view_outbox`` for the view relay; ``redriven_at`` for the operator.
- The access log is written only through ``renkou_access_log_append`` and ``renkou_append_access_logs``, now
  ``SECURITY DEFINER`` functions owned by the owner, with a fixed ``search_path``: the query API may append
  entries and read the log, never INSERT, UPDATE or DELETE a row or move a chain head itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SERVICE_ROLES = ("renkou_gateway", "renkou_projector", "renkou_query_api", "renkou_view_relay", "renkou_operator")
APPEND_FUNCTIONS = (
    "renkou_access_log_append(text, bytea, uuid, text, text, text[], text, timestamptz)",
    "renkou_append_access_logs(text[], bytea[], uuid[], text[], text[], text[], text[], timestamptz[])",
)


def upgrade() -> None:
    roles = ", ".join(f"'{r}'" for r in SERVICE_ROLES)
    op.execute(f"""
        DO $$
        DECLARE r text;
        BEGIN
            FOREACH r IN ARRAY ARRAY[{roles}] LOOP
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
                                   AND (rolsuper OR rolcreaterole)) THEN
                        RAISE EXCEPTION 'role % does not exist: create the service roles first (renkou up does)', r;
                    END IF;
                    EXECUTE format('CREATE ROLE %I NOLOGIN', r);
                END IF;
            END LOOP;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION renkou_grant_projection(target text) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE t text;
        BEGIN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', target);
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO renkou_projector, renkou_query_api, renkou_view_relay, '
                           'renkou_operator', target);
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO renkou_projector, renkou_query_api, '
                           'renkou_view_relay, renkou_operator', target);
            FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = target AND c.relkind IN ('r', 'p') LOOP
                IF t = 'event_archive' THEN
                    EXECUTE format('GRANT INSERT ON %I.%I TO renkou_projector', target, t);
                ELSE
                    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %I.%I TO renkou_projector', target, t);
                END IF;
            END LOOP;
            EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO renkou_projector', target);
            EXECUTE format('GRANT DELETE ON %I.view_outbox TO renkou_view_relay', target);
            EXECUTE format('GRANT UPDATE (redriven_at) ON %I.dead_letters TO renkou_operator', target);
        END $$
    """)
    op.execute("REVOKE ALL ON FUNCTION renkou_grant_projection(text) FROM PUBLIC")
    op.execute("SELECT renkou_grant_projection('projection')")

    # The public schema: grants, tokens, idempotency records, the access log, bookkeeping.
    everyone = ", ".join(SERVICE_ROLES)
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {everyone}")
    op.execute(f"GRANT SELECT ON renkou_meta, alembic_version TO {everyone}")
    op.execute("GRANT SELECT ON consumer_grants TO renkou_query_api, renkou_operator")
    op.execute("GRANT INSERT, UPDATE ON consumer_grants TO renkou_operator")
    op.execute("GRANT SELECT ON department_tokens TO renkou_gateway, renkou_operator")
    op.execute("GRANT INSERT, UPDATE ON department_tokens TO renkou_operator")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON gateway_events TO renkou_gateway")
    op.execute("GRANT SELECT ON access_log, access_log_heads TO renkou_query_api, renkou_operator")
    for function in APPEND_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = public, pg_temp")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO renkou_query_api")
    op.execute("REVOKE ALL ON FUNCTION renkou_refuse_change() FROM PUBLIC")


def downgrade() -> None:
    everyone = ", ".join(SERVICE_ROLES)
    for function in APPEND_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SECURITY INVOKER RESET search_path")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION renkou_refuse_change() TO PUBLIC")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {everyone}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA projection FROM {everyone}")
    op.execute(f"REVOKE ALL ON SCHEMA projection FROM {everyone}")
    op.execute("DROP FUNCTION renkou_grant_projection(text)")
