"""The AsyncAPI document of renkou's topics (CONTRACT §14), with the real payload schemas, for clients to generate
code from.

* The four department topics carry the event catalogue: every committed JSON Schema of every event type
  (``events/schemas/<event_type>/v<N>.json``, kept compatible by ``renkou schemas check``), one message each.
* ``population.resident_view.v1`` and the consumers' ``population.resident_view.v1.<grant>`` carry the resident
  view (the query API's ``ResidentView``), keyed by citizen ID.
* ``population.dead_letter.v1`` carries rejected records unchanged, with the reason in ``renkou.dlq.*`` headers.
* ``population.audit_anchor.v1`` carries the signed audit anchors (``AnchorRecord``).

``python -m services.asyncapi`` writes ``events/asyncapi.json``; the unit tests check it is what the code builds
and that every event payload is the committed schema. The projector serves the document for its namespace at
``/asyncapi.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from events import ANCHOR_TOPIC, DEAD_LETTER_TOPIC, DEPARTMENTS, RESIDENT_VIEW_TOPIC, consumer_view_topic, topic_for
from events.registry import REGISTRY
from events.schemas import SCHEMA_DIR
from services.anchor.record import ALGORITHM, BUCKET_RULE, BUCKETS, FORMAT, LEAVES_PER_BUCKET
from services.dead_letters import (
    OMITTED,
    REASON,
    REJECTED_AT,
    REJECTED_BY,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    VALUE_SIZE,
)
from services.query_api.models import ResidentView
from services.settings import project_root

__all__ = ["ASYNCAPI_FILE", "AnchorRecord", "document", "render"]

ASYNCAPI_FILE: Final = project_root() / "events" / "asyncapi.json"
_KEY: Final = {"type": "string", "description": "The citizen ID the record is about (the partitioning key)."}


class LogDigestRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chains: int = Field(ge=0)
    links: int = Field(ge=0)
    root: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 over the bucket digests, hex")
    digests: str = Field(description=f"{BUCKETS} SHA-256 bucket digests, concatenated, base64")


class HeldChainRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log: Literal["archive", "access_log"]
    citizen_id: str
    department: str
    anchored_seq: int | None
    problem: str
    bucket: int | None


class HeldRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0)
    chains: list[HeldChainRecord]


class AnchorRecord(BaseModel):
    """A published audit anchor (``services.anchor.record``): the signed body and its Ed25519 signature over the
    canonical JSON of every other field. Fields a later format adds are allowed (and signed)."""

    model_config = ConfigDict(extra="allow")
    format: Literal["renkou.audit_anchor/1"] = Field(description=FORMAT)
    seq: int = Field(ge=0)
    previous: str | None = Field(description="SHA-256 of the previous anchor's signed bytes, hex")
    anchored_at: str = Field(description="ISO 8601")
    reason: str = Field(description="interval | swap | shutdown | manual")
    projection: str
    schema_: str = Field(alias="schema")
    checkpoints: list[tuple[str, int, int]] = Field(description="(topic, partition, next offset) anchored")
    buckets: Literal[256] = BUCKETS
    leaves_per_bucket: Literal[256] = LEAVES_PER_BUCKET
    bucket_rule: str = Field(description=BUCKET_RULE)
    logs: dict[Literal["archive", "access_log"], LogDigestRecord]
    held: HeldRecord
    key_id: str
    algorithm: Literal["Ed25519"] = Field(description=ALGORITHM)
    signature: str = Field(description="Ed25519 signature, base64")


def _event_schemas() -> dict[str, dict[str, Any]]:
    """Every committed event schema, by message name ``<event_type>.v<N>``."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*/v*.json")):
        out[f"{path.parent.name}.{path.stem}"] = json.loads(path.read_text())
    return out


def _hoisted(name: str, schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved into the document's ``components.schemas`` (as ``<name>.<def>``) and
    its references pointed there: inside the AsyncAPI document ``#/$defs/...`` would point at nothing."""
    definitions = schema.get("$defs", {})

    def point(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: point(v) for k, v in node.items() if k != "$defs"}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = f"#/components/schemas/{name}.{ref.removeprefix('#/$defs/')}"
            return out
        if isinstance(node, list):
            return [point(item) for item in node]
        return node

    for key, definition in definitions.items():
        schemas[f"{name}.{key}"] = point(definition)
    hoisted: dict[str, Any] = point(schema)
    return hoisted


def _message(name: str, title: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "contentType": extra.pop("content_type", "application/json"),
        "payload": payload,
        "bindings": {"kafka": {"key": _KEY}},
        **extra,
    }


@dataclass
class _Document:
    """The parts of the document being assembled, channel by channel; ``schemas`` holds every schema hoisted."""

    namespace: str
    schemas: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)

    def channel(self, name: str, topic: str, title: str, messages: list[str], **extra: Any) -> None:
        """The channel ``name`` at ``topic`` (in the namespace), carrying ``messages``."""
        self.channels[name] = {
            "address": self.namespace + topic,
            "title": title,
            **extra,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
        }

    def operation(self, name: str, action: Literal["send", "receive"], channel: str, summary: str = "") -> None:
        self.operations[name] = {"action": action, "channel": {"$ref": f"#/channels/{channel}"}}
        if summary:
            self.operations[name]["summary"] = summary

    def departments(self) -> None:
        """A channel per department's topic, a message per event type and version it carries."""
        events = _event_schemas()
        for department in DEPARTMENTS:
            names = [n for n in events if REGISTRY.department_of(n.rsplit(".", 1)[0]) == department]
            for name in names:
                event_type, version = name.rsplit(".", 1)
                self.messages[name] = _message(
                    name,
                    f"{event_type} ({version})",
                    _hoisted(name, events[name], self.schemas),
                    summary=events[name].get("description", ""),
                )
            self.channel(
                department,
                topic_for(department),
                f"{department} events",
                names,
                description="The department's events, the system of record; keyed by citizen ID, kept forever.",
            )
            self.operation(
                f"publish_{department}",
                "send",
                department,
                "The department (through the gateway, the publisher SDK or the outbox relay) publishes.",
            )
            self.operation(
                f"project_{department}",
                "receive",
                department,
                "The projector folds the events into the resident view, exactly once.",
            )

    def views(self) -> None:
        """The resident views: the main topic and each consumer's own."""
        view = _hoisted("resident_view", ResidentView.model_json_schema(), self.schemas)
        self.messages["resident_view"] = _message(
            "resident_view", "The resident view (CONTRACT §6)", view, summary="The view as it stands after a change."
        )
        self.channel(
            "resident_view",
            RESIDENT_VIEW_TOPIC,
            "resident views",
            ["resident_view"],
            description="Compacted: the latest view of each resident.",
        )
        self.channel(
            "consumer_view",
            consumer_view_topic("{grant}"),
            "a consumer's resident views",
            ["resident_view"],
            description="The views a grant may read, with only its sections (CONTRACT §11); every delivery is "
            "recorded in the residents' access logs.",
            parameters={"grant": {"description": "The consumer's grant name."}},
        )

    def dead_letters(self) -> None:
        """The dead letters: a rejected record's value as it came, its reason and origin in headers."""
        header_names = (
            REASON,
            SOURCE_TOPIC,
            SOURCE_PARTITION,
            SOURCE_OFFSET,
            REJECTED_BY,
            REJECTED_AT,
            OMITTED,
            VALUE_SIZE,
        )
        self.messages["dead_letter"] = _message(
            "dead_letter",
            "A rejected record",
            {
                "type": "string",
                "format": "binary",
                "description": "The rejected record's value, unchanged (left out when too large: see "
                "renkou.dlq.omitted).",
            },
            content_type="application/octet-stream",
            headers={
                "type": "object",
                "properties": {name: {"type": "string"} for name in header_names},
                "required": [REASON, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, REJECTED_BY],
            },
        )
        self.channel("dead_letters", DEAD_LETTER_TOPIC, "dead letters", ["dead_letter"])

    def anchors(self) -> None:
        """The signed audit anchors (CONTRACT §10)."""
        self.messages["audit_anchor"] = _message(
            "audit_anchor",
            "A signed audit anchor (CONTRACT §10)",
            _hoisted("audit_anchor", AnchorRecord.model_json_schema(by_alias=True), self.schemas),
        )
        self.channel("audit_anchors", ANCHOR_TOPIC, "audit anchors", ["audit_anchor"])


def document(namespace: str = "") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the topics of ``namespace`` (empty: the contract's own names)."""
    parts = _Document(namespace)
    parts.departments()
    parts.views()
    parts.dead_letters()
    parts.anchors()
    parts.operation("relay_views", "send", "resident_view")
    parts.operation("read_own_views", "receive", "consumer_view")
    parts.operation("dead_letter", "send", "dead_letters")
    parts.operation("anchor", "send", "audit_anchors")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "renkou",
            "version": "1.0.0",
            "description": "Population events, resident views, dead letters and audit anchors on Kafka. Every record "
            "published through the gateway or the publisher SDK may carry a W3C `traceparent` header (the trace of the "
            "request that published it).",
        },
        "defaultContentType": "application/json",
        "channels": parts.channels,
        "operations": parts.operations,
        "components": {"messages": parts.messages, "schemas": parts.schemas},
    }


def render(namespace: str = "") -> str:
    return json.dumps(document(namespace), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ASYNCAPI_FILE
    target.write_text(render())
    print(target)
