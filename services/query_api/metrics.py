"""Prometheus metrics of the query API: request latency per route (``services.http.metrics``), reads, access-log
failures and the access-log relay."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.http.metrics import request_histogram

__all__ = ["QueryApiMetrics"]


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
            latency=request_histogram("query_api", reg),
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
