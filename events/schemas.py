"""Published JSON Schemas of the events, and the check that keeps them honest.

``events/schemas/<event_type>/v<N>.json`` is the JSON Schema (draft 2020-12) of the full envelope of one
version of one event type, with an example event. Once committed, a version is *published*: department
systems validate against it, and the log holds events of that shape forever. Hence two rules, enforced by
``check_schemas`` (``renkou schemas check`` in CI):

1. **A published version never changes.** The code's schema of the latest version must equal the committed one
   (titles, descriptions and examples aside). Changing a payload means a new ``schema_version``.
2. **Every published version stays readable.** For each older version there must be an upcaster chain to the
   latest one, and the example event committed with the old version must still parse. Where the chain is only
   ``same_payload`` steps, the schemas must also be structurally compatible: no field removed, no new required
   field, no enum narrowed, no type changed, no bound tightened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from events.parsing import InvalidEvent, parse_event
from events.registry import REGISTRY, EventRegistry, same_payload

__all__ = [
    "SCHEMA_DIR",
    "ExportResult",
    "check_schemas",
    "compatibility_problems",
    "event_schema",
    "export_schemas",
    "render_schema",
    "schema_path",
]

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"
"""Where the published schemas are committed (``events/schemas``)."""

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_VERSION_FILE: Final = re.compile(r"^v([1-9][0-9]*)\.json$")
# Words for people, not rules: changing them does not change which events a schema accepts.
_ANNOTATIONS: Final = frozenset({"title", "description", "examples", "$comment", "$schema"})


def schema_path(directory: Path, event_type: str, version: int) -> Path:
    """``<directory>/<event_type>/v<version>.json``."""
    return directory / event_type / f"v{version}.json"


def event_schema(
    event_type: str, *, registry: EventRegistry | None = None, example: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON Schema of the whole envelope of the latest version of ``event_type`` (plus ``example``)."""
    registry = registry or REGISTRY
    payload_cls = registry.payload_class(event_type)
    version = payload_cls.schema_version
    schema = registry.event_class(event_type).model_json_schema()
    schema["$schema"] = _DIALECT
    schema["title"] = f"{event_type} v{version}"
    schema["description"] = (
        f"An event of type {event_type!r}, schema version {version}, written by {payload_cls.department} "
        f"to population.{payload_cls.department}.v1. Payload: {(payload_cls.__doc__ or '').strip()}"
    )
    if example is not None:
        schema["examples"] = [dict(example)]
    return schema


def render_schema(schema: Mapping[str, Any]) -> str:
    """The committed text of a schema: sorted keys, two-space indent, UTF-8, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@dataclass
class ExportResult:
    """What ``export_schemas`` did."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def export_schemas(
    directory: Path = SCHEMA_DIR,
    *,
    registry: EventRegistry | None = None,
    examples: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
) -> ExportResult:
    """Write the schema of the latest version of every event type under ``directory``.

    Older versions' files are left alone (the code no longer has their models; they stay as published). A file
    whose schema differs from the code's is *not* overwritten unless ``force``: that version is published, and
    the right move is a new ``schema_version``. ``examples`` maps event type → example event (default:
    ``events.examples``); each example must parse, so a committed schema never carries an invalid one.
    """
    registry = registry or REGISTRY
    if examples is None:
        from events.examples import example_events

        examples = example_events()
    result = ExportResult()
    for event_type in sorted(registry.event_types):
        version = registry.latest_version(event_type)
        path = schema_path(directory, event_type, version)
        example = examples.get(event_type)
        if example is not None:
            try:
                parse_event(example, registry=registry)
            except InvalidEvent as exc:
                result.refused.append(f"{event_type} v{version}: the example event is invalid: {exc}")
                continue
        schema = event_schema(event_type, registry=registry, example=example)
        text = render_schema(schema)
        if path.exists():
            existing = path.read_text(encoding="utf-8")
            if existing == text:
                result.unchanged.append(path)
                continue
            differences = _differences(_load(existing), schema)
            if differences and not force:
                result.refused.append(
                    f"{event_type} v{version}: {path} is published and differs from the code "
                    f"({'; '.join(differences[:3])}); bump schema_version, or use --force if v{version} "
                    "was never released"
                )
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    return result


def check_schemas(directory: Path = SCHEMA_DIR, *, registry: EventRegistry | None = None) -> list[str]:
    """Every way the committed schemas and the code disagree (see the module docstring); empty when clean."""
    registry = registry or REGISTRY
    if not directory.is_dir():
        return [f"{directory}: no such directory of published schemas"]
    problems: list[str] = []
    published: dict[str, dict[int, Path]] = {}
    for type_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(type_dir.iterdir()):
            match = _VERSION_FILE.match(path.name)
            if match is None:
                problems.append(f"{path}: unexpected file (expected v<N>.json)")
                continue
            published.setdefault(type_dir.name, {})[int(match.group(1))] = path

    for event_type in sorted(registry.event_types):
        latest = registry.latest_version(event_type)
        if latest not in published.get(event_type, {}):
            expected = schema_path(directory, event_type, latest)
            problems.append(f"{event_type} v{latest}: no published schema at {expected}; run `renkou schemas export`")

    for event_type, versions in sorted(published.items()):
        if event_type not in registry.event_types:
            listed = ", ".join(f"v{v}" for v in sorted(versions))
            problems.append(
                f"{event_type}: schemas are published ({listed}) but the code no longer knows this type; "
                "events of it in the log would be rejected"
            )
            continue
        latest = registry.latest_version(event_type)
        current = event_schema(event_type, registry=registry)
        for version, path in sorted(versions.items()):
            try:
                committed = _load(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problems.append(f"{event_type} v{version}: {path} cannot be read: {exc}")
                continue
            if version > latest:
                problems.append(f"{event_type} v{version}: published, but the code only knows up to v{latest}")
                continue
            if version == latest:
                differences = _differences(committed, current)
                if differences:
                    problems.append(
                        f"{event_type} v{version}: the code's schema differs from the published {path} "
                        f"({'; '.join(differences[:5])}); a published version never changes: bump "
                        "schema_version and register an upcaster"
                    )
            else:
                unreadable = _readability_problems(event_type, version, committed, current, registry)
                problems.extend(unreadable)
                if unreadable and version not in registry.readable_versions(event_type):
                    continue  # its example cannot parse either; saying so again would only add noise
            problems.extend(_example_problems(event_type, version, committed, registry))
    return problems


def _readability_problems(
    event_type: str, version: int, committed: dict[str, Any], current: dict[str, Any], registry: EventRegistry
) -> list[str]:
    latest = registry.latest_version(event_type)
    label = f"{event_type} v{version} → v{latest}"
    breaking = compatibility_problems(committed, current)
    missing = [v for v in range(version, latest) if registry.upcaster(event_type, v) is None]
    if missing:
        steps = ", ".join(f"v{v}→v{v + 1}" for v in missing)
        if breaking:
            why = "and the schemas are incompatible: " + "; ".join(breaking[:5])
        else:
            why = "(the schemas are compatible: same_payload would do)"
        return [f"{label}: no upcaster for {steps}; published v{version} events would be rejected {why}".rstrip()]
    only_identity = all(registry.upcaster(event_type, v) is same_payload for v in range(version, latest))
    if only_identity and breaking:
        return [f"{label}: upcast with same_payload, but the schemas are incompatible: " + "; ".join(breaking[:5])]
    return []


def _example_problems(event_type: str, version: int, committed: dict[str, Any], registry: EventRegistry) -> list[str]:
    examples = committed.get("examples")
    if not isinstance(examples, list) or not examples:
        if version < registry.latest_version(event_type):
            return [f"{event_type} v{version}: no example event in the published schema to prove it still parses"]
        return []
    problems = []
    for example in examples:
        try:
            parse_event(example, registry=registry)
        except InvalidEvent as exc:
            problems.append(f"{event_type} v{version}: the published example no longer parses: {exc}")
    return problems


# ----------------------------------------------------------------------------------------------------
# Structural comparison
# ----------------------------------------------------------------------------------------------------


def _load(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _inline(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """The schema with ``$ref``s replaced by their targets (ours are not recursive) and ``$defs`` dropped, so
    that renaming a Python class does not count as a change."""
    if depth > 50:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/$defs/"):
            target = root.get("$defs", {}).get(node["$ref"].removeprefix("#/$defs/"), {})
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, root, depth + 1)
        return {k: _inline(v, root, depth + 1) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, root, depth + 1) for v in node]
    return node


def _strip(node: Any, *, in_properties: bool = False) -> Any:
    """Drop annotations (titles, descriptions, examples); keys inside ``properties`` are field names, kept."""
    if isinstance(node, dict):
        return {
            k: _strip(v, in_properties=(k == "properties" and not in_properties))
            for k, v in node.items()
            if in_properties or k not in _ANNOTATIONS
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _normal(schema: Mapping[str, Any]) -> Any:
    return _strip(_inline(schema, schema))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """JSON paths where two schemas differ in substance."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a:
                    found.append(f"{path}/{key} added")
                elif key not in b:
                    found.append(f"{path}/{key} removed")
                else:
                    walk(a[key], b[key], f"{path}/{key}")
        elif a != b:
            found.append(
                f"{path or '/'} changed from {json.dumps(a, ensure_ascii=False)[:80]} to "
                f"{json.dumps(b, ensure_ascii=False)[:80]}"
            )

    walk(_normal(old), _normal(new), "")
    return found


def compatibility_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Ways in which schema ``new`` would reject a record that schema ``old`` accepts; empty if none found.

    A structural check over the keywords Pydantic emits (``type``, ``enum``/``const``, ``anyOf``,
    ``properties``/``required``/``additionalProperties``, string and number bounds, ``pattern``, ``format``);
    a changed pattern counts as incompatible because patterns cannot be compared in general.
    """
    problems: list[str] = []
    old_normal, new_normal = _normal(old), _normal(new)
    # The version number differs between versions by definition; the upcasters take care of it.
    for schema in (old_normal, new_normal):
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            schema["properties"].pop("schema_version", None)
    _compare(old_normal, new_normal, "", problems)
    return problems


def _alternatives(schema: Any) -> list[Any]:
    if isinstance(schema, dict) and isinstance(schema.get("anyOf"), list):
        return list(schema["anyOf"])
    return [schema]


def _kind(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "type" in schema:
        return str(schema["type"])
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    kinds = {type(v).__name__ for v in values}
    return kinds.pop() if len(kinds) == 1 else "any"


def _values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return None


def _compare(old: Any, new: Any, path: str, problems: list[str]) -> None:
    where = path or "(record)"
    if not isinstance(old, dict) or not isinstance(new, dict) or new == old:
        return
    old_options, new_options = _alternatives(old), _alternatives(new)
    if len(old_options) > 1 or len(new_options) > 1:
        for option in old_options:
            matches = [n for n in new_options if _kind(n) == _kind(option) or _kind(n) == "any"]
            if not matches:
                problems.append(f"{where}: no longer accepts {_kind(option)}")
            else:
                _compare(option, matches[0], path, problems)
        return
    if "type" in old and "type" in new and old["type"] != new["type"]:
        problems.append(f"{where}: type changed from {old['type']} to {new['type']}")
        return
    old_values, new_values = _values(old), _values(new)
    if new_values is not None:
        if old_values is None:
            problems.append(f"{where}: now restricted to {new_values}")
        else:
            lost = [v for v in old_values if v not in new_values]
            if lost:
                problems.append(f"{where}: no longer accepts {', '.join(map(repr, lost))}")
    for key, tighter in (("minimum", max), ("exclusiveMinimum", max), ("minLength", max)):
        if key in new and (key not in old or tighter(old[key], new[key]) != old[key]):
            problems.append(f"{where}: {key} raised to {new[key]}")
    for key, tighter in (("maximum", min), ("exclusiveMaximum", min), ("maxLength", min)):
        if key in new and (key not in old or tighter(old[key], new[key]) != old[key]):
            problems.append(f"{where}: {key} lowered to {new[key]}")
    for key in ("pattern", "format"):
        if key in new and new.get(key) != old.get(key):
            problems.append(f"{where}: {key} changed to {new[key]!r}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    if isinstance(old_props, dict) and isinstance(new_props, dict):
        old_required = set(old.get("required", []))
        for name in new.get("required", []):
            if name not in old_required:
                problems.append(f"{_join(path, name)}: new required field")
        if new.get("additionalProperties") is False:
            for name in old_props:
                if name not in new_props:
                    problems.append(f"{_join(path, name)}: field removed (records carrying it would be rejected)")
        for name in old_props:
            if name in new_props:
                _compare(old_props[name], new_props[name], _join(path, name), problems)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
