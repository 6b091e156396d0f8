"""Prometheus metrics of one projector process (a registry per process, created by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ProjectorMetrics:
    registry: CollectorRegistry
    applied: Counter
    duplicates: Counter
    stale: Counter
    dead_letters: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    lag: Gauge
    last_batch: Gauge
    batch_failures: Counter
    isolated: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ProjectorMetrics:
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            applied=Counter(
                "renkou_projector_events_applied", "Events applied to the view", ["department"], registry=reg
            ),
            duplicates=Counter("renkou_projector_duplicates", "Redelivered events skipped by event_id", registry=reg),
            stale=Counter(
                "renkou_projector_stale_records", "Records below the stored checkpoint, skipped", registry=reg
            ),
            dead_letters=Counter(
                "renkou_projector_dead_letters", "Records rejected to the dead-letter topic", registry=reg
            ),
            batch_size=Histogram(
                "renkou_projector_batch_size",
                "Records per batch",
                buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
                registry=reg,
            ),
            batch_seconds=Histogram("renkou_projector_batch_seconds", "Seconds per batch transaction", registry=reg),
            lag=Gauge(
                "renkou_projector_lag",
                "Records between the last applied offset and the log end",
                ["topic", "partition"],
                registry=reg,
                # With several workers (services.workers) the partition's current owner wrote last.
                multiprocess_mode="mostrecent",
            ),
            last_batch=Gauge(
                "renkou_projector_last_batch_timestamp",
                "Unix time of the last committed batch",
                registry=reg,
                multiprocess_mode="max",
            ),
            batch_failures=Counter("renkou_projector_batch_failures", "Batches rolled back and retried", registry=reg),
            isolated=Counter(
                "renkou_projector_isolated_records",
                "Records dead-lettered because applying them failed (found by bisecting their batch)",
                registry=reg,
            ),
        )
