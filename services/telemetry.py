"""Traces across the pipeline (CONTRACT §14): one trace from a department's ``POST`` to the projector's batch that
applied the event, and a span for each query API request.

OpenTelemetry's SDK with the framework instrumentations: FastAPI's for the HTTP services, FastStream's
``KafkaTelemetryMiddleware`` for the projector's batches, asyncpg's for the statements. The trace context travels
in W3C ``traceparent`` / ``tracestate`` headers on the Kafka records: the publisher (the gateway's, and the SDK
departments use) writes them from the current span; the projector reads them back and records, for each event a
batch applied, a span in that event's trace (linked to the batch's span).

Spans are exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set, with the exporter's own environment variables (headers, timeout…); without it nothing is traced and nothing
costs anything. Tests hand a ``TracerProvider`` of their own to the apps instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import TracerProvider

__all__ = ["TRACE_HEADERS", "extract", "inject", "instrument_fastapi", "tracer_provider"]

ENDPOINT_ENV: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACE_HEADERS: Final = ("traceparent",)
"""Only the W3C ``traceparent`` (55 bytes) travels on a record: ``tracestate`` is the caller's to fill (up to
kilobytes), and the system-of-record topics keep every byte forever."""
_CITIZEN_ID: Final = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])|(?<![0-9])[0-9]{15}(?![0-9])")
_URL_ATTRIBUTES: Final = ("http.target", "http.url", "url.path", "url.full", "url.query", "http.route")
_FROM_ENV: dict[str, TracerProvider] = {}


def tracer_provider(service: str, given: TracerProvider | None = None) -> TracerProvider | None:
    """Where ``service``'s spans go: ``given`` (a test's), else an OTLP exporter when the endpoint is set in the
    environment (made once per process, asyncpg instrumented with it), else ``None``: no tracing."""
    if given is not None:
        return given
    if not any(os.environ.get(name) for name in ENDPOINT_ENV):
        return None
    if service not in _FROM_ENV:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = SdkTracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if not _FROM_ENV:
            AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        _FROM_ENV[service] = provider
    return _FROM_ENV[service]


def instrument_fastapi(app: Any, provider: TracerProvider | None) -> None:
    """A server span for every request of ``app`` (FastAPI's instrumentation), if there is a provider."""
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        server_request_hook=_redact_citizen_ids,
    )


def _redact_citizen_ids(span: Any, scope: dict[str, Any]) -> None:
    """Who read whose data is the access log's to keep, not the trace collector's: the citizen IDs in a
    request's URL (``/v1/residents/{id}``) are replaced in the span's attributes."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and _CITIZEN_ID.search(value):
            span.set_attribute(name, _CITIZEN_ID.sub("{citizen_id}", value))
    name = getattr(span, "name", "")
    if isinstance(name, str) and _CITIZEN_ID.search(name):
        span.update_name(_CITIZEN_ID.sub("{citizen_id}", name))


def inject() -> list[tuple[str, bytes]]:
    """Kafka record headers carrying the current span's context (none when no span is recording)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items() if name in TRACE_HEADERS]


def extract(headers: Iterable[tuple[str, bytes]] | None) -> Context | None:
    """The trace context a record's headers carry: ``None`` without one, or with one that is not a valid, sampled
    W3C ``traceparent`` (a record written straight to Kafka may carry anything)."""
    carrier = {
        name: value.decode("latin-1")
        for name, value in headers or ()
        if name in TRACE_HEADERS and isinstance(value, bytes)  # a Kafka header may have no value at all
    }
    if "traceparent" not in carrier:
        return None
    context = propagate.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    return context


def record_applied(
    provider: TracerProvider,
    records: Sequence[Any],
    start_ns: int,
    batch: Any = None,
    dead_lettered: Collection[tuple[str, int, int]] = (),
) -> None:
    """For each record that carries a trace context, a span in that trace for what the batch did with it
    (``start_ns`` to now): applied, or dead-lettered; linked to the batch's own span when there is one."""
    tracer = provider.get_tracer("renkou.projector")
    links = [trace.Link(batch.get_span_context())] if batch is not None else []
    for record in records:
        context = extract(getattr(record, "headers", None))
        if context is None:
            continue
        dead = (record.topic, record.partition, record.offset) in dead_lettered
        span = tracer.start_span(
            "renkou.projector dead-letter" if dead else "renkou.projector apply",
            context=context,
            kind=trace.SpanKind.CONSUMER,
            start_time=start_ns,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
            },
        )
        span.end()
