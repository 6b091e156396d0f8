"""Published JSON Schemas: the committed files match the code, and a new version is only accepted when the
published ones stay readable (upcasters, structural compatibility). All registry changes happen on copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from events import EVENT_TYPES, REGISTRY, InvalidEvent, parse_event
from events.envelope import Payload
from events.examples import example_event
from events.fields import Day, Department, ShortText, Text
from events.registry import EventRegistry, UnknownEventTypeError, same_payload
from events.schemas import (
    SCHEMA_DIR,
    check_schemas,
    compatibility_problems,
    event_schema,
    export_schemas,
    render_schema,
    schema_path,
)
from services.cli.schemas_cmd import app


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A scratch copy of the committed schemas."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, target)
    return target


# -- the committed files -------------------------------------------------------------------------------------


def test_committed_schemas_match_the_code() -> None:
    assert check_schemas() == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_committed_file_is_what_export_writes(event_type: str) -> None:
    path = schema_path(SCHEMA_DIR, event_type, REGISTRY.latest_version(event_type))
    expected = render_schema(event_schema(event_type, example=example_event(event_type)))
    assert path.read_text(encoding="utf-8") == expected, "run `renkou schemas export`"


def test_committed_schema_shape() -> None:
    schema = json.loads((SCHEMA_DIR / "birth.registered" / "v1.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "birth.registered v1"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["event_type"]["const"] == "birth.registered"
    assert schema["properties"]["schema_version"]["const"] == 1
    payload = schema["$defs"]["BirthRegistered"]
    assert payload["additionalProperties"] is False
    assert set(payload["required"]) >= {"name", "sex", "birth_date", "region_code", "urban"}
    assert "mother_citizen_id" not in payload["required"]
    assert schema["$defs"]["PublicSecuritySource"]["properties"]["department"]["const"] == "public_security"
    assert parse_event(schema["examples"][0]).event_type == "birth.registered"


def test_export_is_idempotent(tmp_path: Path) -> None:
    first = export_schemas(tmp_path)
    assert len(first.written) == len(EVENT_TYPES) and not first.refused
    second = export_schemas(tmp_path)
    assert second.written == [] and len(second.unchanged) == len(EVENT_TYPES)
    assert check_schemas(tmp_path) == []


# -- a published version never changes -----------------------------------------------------------------------


def tamper(path: Path, change: Any) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(render_schema(schema), encoding="utf-8")


def test_a_changed_published_version_is_reported(published: Path) -> None:
    path = published / "birth.registered" / "v1.json"
    tamper(path, lambda s: s["$defs"]["BirthRegistered"]["properties"]["name"].update(maxLength=50))
    (problem,) = check_schemas(published)
    assert problem.startswith("birth.registered v1: the code's schema differs from the published")
    assert "maxLength changed from 50 to 100" in problem
    assert "bump schema_version" in problem


def test_export_refuses_to_overwrite_a_published_version(published: Path) -> None:
    path = published / "hukou.cancelled" / "v1.json"
    tamper(path, lambda s: s["$defs"]["HukouCancelled"]["properties"]["reason"]["enum"].pop())
    before = path.read_text(encoding="utf-8")
    result = export_schemas(published)
    (refusal,) = result.refused
    assert refusal.startswith("hukou.cancelled v1:") and "is published and differs" in refusal
    assert path.read_text(encoding="utf-8") == before
    assert export_schemas(published, force=True).refused == []
    assert check_schemas(published) == []


def test_documentation_changes_are_not_schema_changes(published: Path) -> None:
    path = published / "death.certified" / "v1.json"
    tamper(path, lambda s: s.update(description="reworded", title="renamed"))
    assert check_schemas(published) == []


def test_missing_stray_and_orphaned_files(published: Path) -> None:
    (published / "vaccination.recorded" / "v1.json").unlink()
    (published / "vaccination.recorded" / "notes.txt").write_text("x", encoding="utf-8")
    shutil.copytree(published / "death.certified", published / "marriage.registered")
    problems = check_schemas(published)
    assert any(p.startswith("vaccination.recorded v1: no published schema") for p in problems)
    assert any("notes.txt: unexpected file" in p for p in problems)
    assert any(p.startswith("marriage.registered: schemas are published (v1)") for p in problems)


# -- new versions: upcasters and compatibility, on a copy of the registry ------------------------------------


class UnemploymentEndedV2(Payload):
    """v2 adds a required reason."""

    event_type: ClassVar[str] = "unemployment.ended"
    department: ClassVar[Department] = "social_security"
    schema_version: ClassVar[int] = 2

    ended_on: Day
    reason: Text


class UnemploymentEndedV2Optional(Payload):
    """v2 adds an optional note: old events stay valid as they are."""

    event_type: ClassVar[str] = "unemployment.ended"
    department: ClassVar[Department] = "social_security"
    schema_version: ClassVar[int] = 2

    ended_on: Day
    note: ShortText | None = None


def v2_example(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    record = example_event("unemployment.ended")
    record.update(schema_version=2, payload=payload)
    return {"unemployment.ended": record}


def registry_with(payload_cls: type[Payload]) -> EventRegistry:
    registry = REGISTRY.copy()
    registry.register(payload_cls, replace=True)
    return registry


def test_the_global_registry_is_not_touched() -> None:
    registry_with(UnemploymentEndedV2).register_upcaster("unemployment.ended", 1, same_payload)
    assert REGISTRY.latest_version("unemployment.ended") == 1
    assert REGISTRY.readable_versions("unemployment.ended") == (1,)
    assert parse_event(example_event("unemployment.ended")).schema_version == 1


def test_new_version_without_upcaster(published: Path) -> None:
    registry = registry_with(UnemploymentEndedV2)
    old = example_event("unemployment.ended")
    with pytest.raises(InvalidEvent, match=r"unknown version of 'unemployment\.ended': got 1, readable: 2"):
        parse_event(old, registry=registry)

    problems = check_schemas(published, registry=registry)
    assert any(p.startswith("unemployment.ended v2: no published schema") for p in problems)

    export = export_schemas(
        published, registry=registry, examples=v2_example({"ended_on": "2024-01-02", "reason": "x"})
    )
    assert schema_path(published, "unemployment.ended", 2) in export.written
    problems = check_schemas(published, registry=registry)
    assert any(
        p.startswith("unemployment.ended v1 → v2: no upcaster for v1→v2") and "payload.reason: new required field" in p
        for p in problems
    ), problems
    assert not any("example no longer parses" in p for p in problems), "one problem, said once"


def test_identity_upcaster_for_an_incompatible_change_is_reported(published: Path) -> None:
    registry = registry_with(UnemploymentEndedV2)
    registry.register_upcaster("unemployment.ended", 1, same_payload)
    export_schemas(published, registry=registry, examples=v2_example({"ended_on": "2024-01-02", "reason": "x"}))
    problems = check_schemas(published, registry=registry)
    assert any("upcast with same_payload, but the schemas are incompatible" in p for p in problems), problems


def test_transforming_upcaster_makes_the_old_version_readable(published: Path) -> None:
    registry = registry_with(UnemploymentEndedV2)

    def add_reason(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "reason": "not recorded before v2"}

    registry.register_upcaster("unemployment.ended", 1, add_reason)
    export_schemas(published, registry=registry, examples=v2_example({"ended_on": "2024-01-02", "reason": "x"}))
    assert check_schemas(published, registry=registry) == []

    event = parse_event(example_event("unemployment.ended"), registry=registry)
    assert event.schema_version == 2
    assert isinstance(event.payload, UnemploymentEndedV2)
    assert event.payload.reason == "not recorded before v2"
    assert registry.readable_versions("unemployment.ended") == (1, 2)
    # consumers see the latest version, whose canonical form is stable
    assert parse_event(event.canonical_bytes(), registry=registry) == event
    # versions nobody published are still rejected, never guessed
    for version in (0, 3):
        record = example_event("unemployment.ended")
        record["schema_version"] = version
        with pytest.raises(InvalidEvent, match="schema_version"):
            parse_event(record, registry=registry)


def test_an_additive_change_only_needs_same_payload(published: Path) -> None:
    registry = registry_with(UnemploymentEndedV2Optional)
    export_schemas(published, registry=registry, examples=v2_example({"ended_on": "2024-01-02", "note": "ok"}))
    (problem,) = check_schemas(published, registry=registry)
    assert "no upcaster for v1→v2" in problem and "same_payload would do" in problem
    registry.register_upcaster("unemployment.ended", 1, same_payload)
    assert check_schemas(published, registry=registry) == []


def test_upcaster_failures_are_invalid_events() -> None:
    registry = registry_with(UnemploymentEndedV2)

    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    registry.register_upcaster("unemployment.ended", 1, broken)
    with pytest.raises(InvalidEvent, match="could not be upcast from v1 to v2: RuntimeError: boom"):
        parse_event(example_event("unemployment.ended"), registry=registry)
    registry.register_upcaster("unemployment.ended", 1, same_payload)
    with pytest.raises(InvalidEvent) as info:
        parse_event(example_event("unemployment.ended"), registry=registry)
    assert info.value.errors == [("payload.reason", "field required (after upcasting from v1 to v2)")]


def test_registry_guards() -> None:
    registry = REGISTRY.copy()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(UnemploymentEndedV2)
    with pytest.raises(ValueError, match="must start from a version between 1 and 0"):
        registry.register_upcaster("unemployment.ended", 1, same_payload)
    with pytest.raises(UnknownEventTypeError):
        registry.register_upcaster("marriage.registered", 1, same_payload)
    registry.register(UnemploymentEndedV2, replace=True)
    with pytest.raises(ValueError, match="does not supersede"):
        registry.register(UnemploymentEndedV2Optional, replace=True)


# -- the structural check on its own -------------------------------------------------------------------------


def payload_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {"payload": {"$ref": "#/$defs/P"}},
        "required": ["payload"],
        "$defs": {
            "P": {
                "type": "object",
                "additionalProperties": False,
                "properties": properties,
                "required": required,
            }
        },
    }


SEX = {"type": "string", "enum": ["male", "female"]}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (payload_schema({"a": SEX}, ["a"]), payload_schema({"a": SEX}, ["a"]), []),
        (
            payload_schema({"a": SEX}, ["a"]),
            payload_schema({"a": {"type": "string", "enum": ["male", "female", "x"]}}, ["a"]),
            [],
        ),
        (
            payload_schema({"a": SEX}, ["a"]),
            payload_schema({"a": {"type": "string", "enum": ["male"]}}, ["a"]),
            ["payload.a: no longer accepts 'female'"],
        ),
        (
            payload_schema({"a": SEX}, ["a"]),
            payload_schema({"a": SEX, "b": {"type": "string"}}, ["a"]),
            [],
        ),
        (
            payload_schema({"a": SEX}, ["a"]),
            payload_schema({"a": SEX, "b": {"type": "string"}}, ["a", "b"]),
            ["payload.b: new required field"],
        ),
        (
            payload_schema({"a": SEX, "b": {"type": "string"}}, ["a"]),
            payload_schema({"a": SEX}, ["a"]),
            ["payload.b: field removed (records carrying it would be rejected)"],
        ),
        (
            payload_schema({"a": {"type": "string", "maxLength": 10}}, []),
            payload_schema({"a": {"type": "string", "maxLength": 5}}, []),
            ["payload.a: maxLength lowered to 5"],
        ),
        (
            payload_schema({"a": {"type": "integer", "minimum": 1}}, []),
            payload_schema({"a": {"type": "integer", "minimum": 0}}, []),
            [],
        ),
        (
            payload_schema({"a": {"type": "integer"}}, []),
            payload_schema({"a": {"type": "string"}}, []),
            ["payload.a: type changed from integer to string"],
        ),
        (
            payload_schema({"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, []),
            payload_schema({"a": {"type": "string"}}, []),
            ["payload.a: no longer accepts null"],
        ),
        (
            payload_schema({"a": {"type": "string"}}, []),
            payload_schema({"a": {"type": "string", "pattern": "^[0-9]+$"}}, []),
            ["payload.a: pattern changed to '^[0-9]+$'"],
        ),
    ],
)
def test_compatibility_problems(old: dict[str, Any], new: dict[str, Any], expected: list[str]) -> None:
    assert compatibility_problems(old, new) == expected


# -- the CLI -------------------------------------------------------------------------------------------------


def test_cli_check_and_export(published: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--dir", str(published)])
    assert result.exit_code == 0, result.output
    assert "schemas OK" in result.output and "33 published schema files" in result.output

    fresh = tmp_path / "fresh"
    result = runner.invoke(app, ["export", "--dir", str(fresh)])
    assert result.exit_code == 0, result.output
    assert "31 written, 0 unchanged, 0 refused" in result.output

    tamper(published / "birth.registered" / "v1.json", lambda s: s["required"].remove("payload"))
    (published / "hukou.cancelled" / "v1.json").unlink()
    result = runner.invoke(app, ["check", "--dir", str(published)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(line.startswith("birth.registered v1: the code's schema differs") for line in lines)
    assert any(line.startswith("hukou.cancelled v1: no published schema") for line in lines)
    assert lines[-1] == "2 schema problems"
