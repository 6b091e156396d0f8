"""Traces across the pipeline (CONTRACT §14), with an in-memory span exporter: one trace from the gateway's
``POST`` to the projector's span for the batch that applied the event, through the ``traceparent`` header on the
Kafka record; and a span for each query API request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import asyncpg
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events import make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.gateway.app import create_app as gateway_app
from services.gateway.auth import issue_token
from services.query_api.app import create_app as query_api_app
from services.telemetry import extract, inject
from tests.support.infra import Endpoints
from tests.support.projector import running_projector, settings_for, wait_caught_up
from tests.support.query_api import event, grant, headers

pytestmark = pytest.mark.integration

CITIZEN = make_citizen_id("510107", date(2003, 4, 5), 17)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names from ``span`` up to its trace's root."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_from_the_post_to_the_batch_that_applied_it(
    infra: Endpoints,
    namespace: str,
    database_url: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    settings = settings_for(infra.kafka_bootstrap, database_url, namespace)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        token = await issue_token(conn, "public_security", "traces")
    finally:
        await conn.close()
    reader = await grant(database_url, "trace-reader", ["identity"], ["school_enrolment"])
    gateway = gateway_app(settings, tracer_provider=provider)
    query_api = query_api_app(settings, tracer_provider=provider)
    body = event("birth.registered", CITIZEN, date(2003, 4, 5))
    async with (
        running_projector(settings, tracer_provider=provider),
        gateway.router.lifespan_context(gateway),
        query_api.router.lifespan_context(query_api),
    ):
        post = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway")
        read = httpx.AsyncClient(transport=httpx.ASGITransport(app=query_api), base_url="http://query")
        async with post, read:
            accepted = await post.post("/v1/events", json=body, headers={"Authorization": f"Bearer {token}"})
            assert accepted.status_code == 202, accepted.text
            await wait_caught_up(settings)
            for _ in range(2):
                got = await read.get(f"/v1/residents/{CITIZEN}", headers=headers(reader, "school_enrolment"))
                assert got.status_code == 200, got.text
            missing = await read.get("/v1/residents/110105198001010011", headers=headers(reader, "school_enrolment"))
            assert missing.status_code in (404, 422)
    finished = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    [server] = [s for s in finished if s.name == "POST /v1/events" and s.kind == trace.SpanKind.SERVER]
    applied = [s for s in finished if s.name == "renkou.projector apply"]
    assert len(applied) == 1, [s.name for s in finished]
    [span] = applied
    # The same trace, the projector's span under the gateway's request ...
    assert span.context.trace_id == server.context.trace_id
    assert _chain(span, by_id)[-1] == "POST /v1/events"
    assert span.attributes is not None
    assert str(span.attributes["messaging.destination.name"]).endswith("public_security.v1")
    # ... and linked to the span of the batch that applied it (FastStream's, in a trace of its own).
    [link] = span.links
    batch = by_id[link.context.span_id]
    assert batch.kind == trace.SpanKind.CONSUMER and "process" in batch.name
    # A span for each query API request: the two reads and the refused one.
    reads = [s for s in finished if s.kind == trace.SpanKind.SERVER and s.name.startswith("GET /v1/residents/")]
    assert len(reads) == 3
    assert {s.context.trace_id for s in reads}.isdisjoint({server.context.trace_id})
    # Who read whose data is the access log's: no citizen ID in any span's name or attributes.
    for finished_span in finished:
        assert CITIZEN not in finished_span.name
        assert not any(CITIZEN in str(value) for value in (finished_span.attributes or {}).values()), finished_span


def test_nothing_is_carried_or_read_without_a_trace() -> None:
    assert inject() == []  # no span recording: no header on the record
    assert extract([("other", b"x")]) is None and extract(None) is None
    assert extract([("traceparent", b"garbage")]) is None  # a record written straight to Kafka may carry anything
    assert extract([("traceparent", None)]) is None  # type: ignore[list-item]  # a header with no value
    unsampled = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert extract([("traceparent", unsampled)]) is None
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("s") as current:
        carried = inject()
        assert [name for name, _ in carried] == ["traceparent"]
        context = extract(carried)
        assert context is not None
        assert trace.get_current_span(context).get_span_context().trace_id == current.get_span_context().trace_id
