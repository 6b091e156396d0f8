"""Prometheus metrics of one gateway process (a registry per app, created by the composition root): requests by
route and status with their latency (``services.http.metrics``), events by outcome, batch sizes, dead letters."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.http.metrics import request_histogram


@dataclass(frozen=True)
class GatewayMetrics:
    registry: CollectorRegistry
    request_seconds: Histogram
    events: Counter
    batch_size: Histogram
    dead_letters: Counter
    dead_letter_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> GatewayMetrics:
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            request_seconds=request_histogram("gateway", reg),
            events=Counter(
                "renkou_gateway_events",
                "Events by department and outcome (accepted, duplicate, conflict, forbidden, invalid, unavailable)",
                ["department", "outcome"],
                registry=reg,
            ),
            batch_size=Histogram(
                "renkou_gateway_batch_size",
                "Events per batch request",
                buckets=(1, 10, 50, 100, 250, 500, 1000),
                registry=reg,
            ),
            dead_letters=Counter(
                "renkou_gateway_dead_letters", "Rejected events written to the dead-letter topic", registry=reg
            ),
            dead_letter_failures=Counter(
                "renkou_gateway_dead_letter_failures",
                "Rejected events that could not be written to the dead-letter topic",
                registry=reg,
            ),
        )
