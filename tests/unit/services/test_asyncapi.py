"""The AsyncAPI document (CONTRACT §14): committed, what the code builds, every event payload the committed JSON
Schema, the anchor and view payloads the records the code writes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events import DEPARTMENTS, topic_for
from events.registry import REGISTRY
from events.schemas import SCHEMA_DIR
from services import asyncapi
from services.anchor.record import BUCKETS, Anchor, LogDigest
from services.projector.app import create_app
from services.query_api.models import ResidentView
from services.settings import Settings


def test_the_committed_document_is_what_the_code_builds() -> None:
    assert asyncapi.ASYNCAPI_FILE.read_text() == asyncapi.render(), "run `python -m services.asyncapi`"


def _inline(node: Any, resolve: Callable[[str], Any], depth: int = 0) -> Any:
    """``node`` with every ``$ref`` replaced by what it points at (recursively, to a bounded depth)."""
    assert depth < 40, "a reference cycle"
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(resolve(node["$ref"]), resolve, depth + 1)
        return {k: _inline(v, resolve, depth) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, resolve, depth) for item in node]
    return node


def _pointer(root: Any) -> Callable[[str], Any]:
    def resolve(ref: str) -> Any:
        assert ref.startswith("#/"), ref
        node = root
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} points at nothing"
            node = node[part]
        return node

    return resolve


def test_every_reference_in_the_document_points_at_something() -> None:
    doc = asyncapi.document()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend([node["$ref"]] if isinstance(node.get("$ref"), str) else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    assert len(refs) > 50
    for ref in refs:
        _pointer(doc)(ref)


def test_every_event_payload_is_its_committed_schema_on_its_departments_topic() -> None:
    doc = asyncapi.document()
    messages = doc["components"]["messages"]
    committed = sorted(SCHEMA_DIR.glob("*/v*.json"))
    assert committed
    for path in committed:
        name = f"{path.parent.name}.{path.stem}"
        schema = json.loads(path.read_text())
        # The same schema once references are followed: its definitions moved into components.schemas.
        served = _inline(messages[name]["payload"], _pointer(doc))
        assert served == _inline(schema, _pointer(schema)), name
        assert {k: v for k, v in messages[name]["payload"].items() if k != "properties"}.items() >= {
            k: v for k, v in schema.items() if k not in ("properties", "$defs")
        }.items()
        channel = doc["channels"][REGISTRY.department_of(path.parent.name)]
        assert {"$ref": f"#/components/messages/{name}"} in channel["messages"].values()
    for department in DEPARTMENTS:
        assert doc["channels"][department]["address"] == topic_for(department)
    assert all(m["payload"] for m in messages.values())  # no empty payload anywhere


def test_an_anchor_as_published_fits_its_schema() -> None:
    digest = LogDigest(3, 7, tuple(bytes([i]) * 32 for i in range(BUCKETS)))
    anchor = Anchor(
        seq=4,
        previous="ab" * 32,
        anchored_at=datetime(2026, 12, 6, tzinfo=UTC),
        reason="interval",
        projection="resident_view",
        schema="projection",
        checkpoints=(("population.health.v1", 0, 12),),
        logs={"archive": digest, "access_log": digest},
    )
    record = json.loads(anchor.sign(Ed25519PrivateKey.generate()).to_bytes())
    assert asyncapi.AnchorRecord.model_validate(record).seq == 4
    payload = asyncapi.document()["components"]["messages"]["audit_anchor"]["payload"]
    assert set(payload["required"]) <= set(record) and "signature" in payload["required"]


def test_the_view_payload_is_the_query_apis_view() -> None:
    doc = asyncapi.document()
    payload = doc["components"]["messages"]["resident_view"]["payload"]
    view = ResidentView.model_json_schema()
    assert _inline(payload, _pointer(doc)) == _inline(view, _pointer(view))


def test_the_projector_serves_the_document_for_its_namespace() -> None:
    app = create_app(Settings(topic_namespace="t1."))

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://projector") as c:
            return await c.get(path)

    served = asyncio.run(get("/asyncapi.json"))
    assert served.status_code == 200 and served.json() == asyncapi.document("t1.")
    assert served.json()["channels"]["health"]["address"] == "t1.population.health.v1"
