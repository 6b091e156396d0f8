"""Prometheus metrics of the query API: request latency histograms per route, reads and access-log failures.

A plain ASGI middleware (no ``BaseHTTPMiddleware``, which costs a task per request) times every request and
labels it by route template (``/v1/residents/{citizen_id}``, never the ID itself), method and status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LatencyMiddleware", "QueryApiMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class QueryApiMetrics:
    registry: CollectorRegistry
    latency: Histogram
    residents_read: Counter
    access_log_failures: Counter
    refusals_dropped: Counter
    relayed: Counter
    relay_lag: Gauge

    @classmethod
    def create(cls) -> QueryApiMetrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            latency=Histogram(
                "renkou_query_api_request_seconds",
                "Request latency in seconds, by route template, method and status",
                ["route", "method", "status"],
                buckets=_BUCKETS,
                registry=reg,
            ),
            residents_read=Counter(
                "renkou_query_api_residents_read",
                "Resident reads answered (one per citizen returned), by endpoint and consumer",
                ["endpoint", "consumer"],
                registry=reg,
            ),
            access_log_failures=Counter(
                "renkou_query_api_access_log_failures",
                "Reads refused with 503 because their access-log entry could not be written",
                registry=reg,
            ),
            refusals_dropped=Counter(
                "renkou_query_api_refusals_dropped",
                "Refused reads that could not be written to refused_reads (a flood beyond the queue, or an outage)",
                registry=reg,
            ),
            relayed=Counter(
                "renkou_query_api_access_log_relayed",
                "Access-log topic records handled by this process's relay (RENKOU_ACCESS_LOG=kafka), by outcome: "
                "chained, skipped (chained by an earlier delivery), rejected (dead-lettered) or lost (offsets that "
                "left the topic before the relay reached them: alert on any)",
                ["outcome"],
                registry=reg,
            ),
            relay_lag=Gauge(
                "renkou_query_api_access_log_relay_lag",
                "Access-log entries on the topic not yet chained, by partition this process relays (after its last "
                "batch; alert when it grows)",
                ["partition"],
                registry=reg,
                multiprocess_mode="livemostrecent",  # the process that relayed the partition last
            ),
        )


class LatencyMiddleware:
    """Observe each HTTP request's latency into ``metrics.latency``."""

    def __init__(self, app: ASGIApp, metrics: QueryApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)
