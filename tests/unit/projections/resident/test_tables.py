"""``named`` and ``in_schema``: how a statement written as text names a declared table."""

from __future__ import annotations

import pytest

from projections.resident import tables
from projections.resident.tables import in_schema, named, quote
from services.db import audit_tables


def test_a_projection_table_is_named_in_the_schema_asked() -> None:
    assert named(tables.sections) == "projection.sections"
    assert named(tables.event_archive, "projection_old_20261206") == "projection_old_20261206.event_archive"


def test_an_audit_table_keeps_its_own_schema_whatever_the_projection_schema() -> None:
    assert named(audit_tables.access_log, "projection_shadow") == "public.access_log"
    assert named(audit_tables.audit_anchor_heads) == "public.audit_anchor_heads"


@pytest.mark.parametrize("bad", ['x"; DROP TABLE projection.sections; --', "Shadow", "9abc", "projection\n", "户籍"])
def test_a_schema_that_is_not_a_lower_case_identifier_names_nothing(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        named(tables.sections, bad)
    with pytest.raises(ValueError, match="invalid schema name"):
        in_schema(bad)


def test_in_schema_names_every_projection_table() -> None:
    names = in_schema("projection_shadow")
    assert sorted(names) == sorted(t.name for t in tables.metadata.tables.values())
    assert names["number_links"] == "projection_shadow.number_links"


def test_a_reserved_word_is_quoted_and_any_other_name_left_as_it_is() -> None:
    assert quote("user") == '"user"'
    assert quote("renkou_outbox") == "renkou_outbox"
    assert named(tables.sections, "user") == '"user".sections'
