"""``Outbox``: a department names its outbox table, and only a name SQL reads as written gets in."""

from __future__ import annotations

import pytest

from services.publisher.outbox import Outbox


def test_a_qualified_name_gives_its_schema_and_table() -> None:
    assert Outbox.named("registry.renkou_outbox").name == "registry.renkou_outbox"
    assert Outbox.named("renkou_outbox").name == "public.renkou_outbox"


@pytest.mark.parametrize(
    ("table", "schema", "kind"),
    [
        ("outbox; DROP TABLE x", "public", "table"),
        ("Outbox", "public", "table"),
        ("renkou_outbox", 'x"y', "schema"),
        ("renkou_outbox", "9registry", "schema"),
        ("a" * 64, "public", "table"),
        ("renkou_outbox\n", "public", "table"),
        ("renkou_outbox", "public\n", "schema"),
    ],
)
def test_a_name_that_is_not_a_lower_case_identifier_is_refused(table: str, schema: str, kind: str) -> None:
    with pytest.raises(ValueError, match=f"outbox {kind} name"):
        Outbox(table, schema=schema)


def test_a_reserved_word_is_a_name_sql_quotes() -> None:
    outbox = Outbox("user", schema="order")
    assert outbox.name == '"order"."user"'
    assert outbox.ddl()[0] == 'CREATE SCHEMA IF NOT EXISTS "order"'
