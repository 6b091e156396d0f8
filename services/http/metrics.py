"""Request latency of the HTTP services (gateway, query API): one ASGI middleware, one histogram shape.

``request_histogram(service, registry)`` is ``renkou_<service>_request_seconds{route, method, status}``: the route
template (``/v1/residents/{citizen_id}``, never the ID itself, ``unmatched`` for a path no route has), so its
``_count`` is also the service's request count by route and status. ``RequestLatency`` observes every HTTP
request into it, whatever answered it — an endpoint, an error handler, or the query API's fast lane — and a request
that escaped every handler as 500. It is a plain ASGI middleware (``BaseHTTPMiddleware`` costs a task per request).
"""

from __future__ import annotations

import time
from typing import Any, Final

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BUCKETS", "RequestLatency", "request_histogram"]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def request_histogram(service: str, registry: CollectorRegistry) -> Histogram:
    """``renkou_<service>_request_seconds`` in ``registry``, labelled by route template, method and status."""
    return Histogram(
        f"renkou_{service}_request_seconds",
        "Request latency in seconds, by route template, method and status",
        ["route", "method", "status"],
        buckets=BUCKETS,
        registry=registry,
    )


class RequestLatency:
    """Observe each HTTP request's latency into ``histogram`` (``request_histogram``'s labels)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

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
            self.histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)
