"""``services.db.audit_tables``: the two chained logs as the statements that check and anchor them see them."""

from __future__ import annotations

from services.anchor.record import LOGS
from services.db.audit_tables import ACCESS_LOG, ARCHIVE_LOG, CHAINED_LOGS


def test_the_chained_logs_are_the_logs_an_anchor_names_in_its_order() -> None:
    assert tuple(log.name for log in CHAINED_LOGS) == LOGS


def test_a_chain_is_named_by_columns_its_rows_and_its_heads_both_have() -> None:
    for log in CHAINED_LOGS:
        assert set(log.chain) <= set(log.rows.c.keys()) & set(log.heads.c.keys())
        assert log.head in log.heads.c
        assert "chain_seq" in log.rows.c and "chain_seq" in log.heads.c


def test_each_log_keeps_its_heads_where_the_migrations_put_them() -> None:
    assert (ARCHIVE_LOG.rows.name, ARCHIVE_LOG.heads.name, ARCHIVE_LOG.head) == (
        "event_archive",
        "sections",
        "chain_head",
    )
    assert (ACCESS_LOG.rows.name, ACCESS_LOG.heads.name, ACCESS_LOG.head) == ("access_log", "access_log_heads", "head")
    assert (ARCHIVE_LOG.started, ACCESS_LOG.started) == ("true", "chain_seq > 0")


def test_the_archive_is_the_projection_schema_asked_and_the_access_log_is_always_public() -> None:
    assert ARCHIVE_LOG.rows_in("projection_shadow") == "projection_shadow.event_archive"
    assert ARCHIVE_LOG.heads_in("projection_shadow") == "projection_shadow.sections"
    assert ACCESS_LOG.rows_in("projection_shadow") == "public.access_log"
    assert ARCHIVE_LOG.same_chain("e", "a") == "e.citizen_id = a.citizen_id AND e.department = a.department"
    assert ACCESS_LOG.same_chain("e", "a") == "e.citizen_id = a.citizen_id"
    assert ARCHIVE_LOG.has_departments and not ACCESS_LOG.has_departments
