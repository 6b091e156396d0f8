"""What authentication costs (CONTRACT §10): a Kafka client's SASL/SCRAM-SHA-512 handshake and a PostgreSQL
connection's scram-sha-256 one, measured on the secured stack.

SASL without TLS authenticates once per connection and adds nothing per record afterwards (the records travel
as before); so the price of the safeguard is paid when a client connects, and long-lived services connect a few
times a day. This benchmark measures that price: the median time from nothing to a started aiokafka producer
(bootstrap, SCRAM exchange, metadata) and to an open asyncpg connection as a service role.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.db.dsn import asyncpg_dsn
from services.db.roles import QUERY_API, stored_password, with_credentials
from services.kafka.auth import PROJECTOR, stored_credentials
from tests.support.infra import Endpoints

ROUNDS = 20


async def bench_handshakes(infra: Endpoints, database_url: str, rounds: int = ROUNDS) -> dict[str, Any]:
    kafka: list[float] = []
    credentials = stored_credentials(infra.state_dir, PROJECTOR)
    options = credentials.aiokafka_options() if credentials is not None else {}
    for _ in range(rounds):
        started = time.perf_counter()
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, **options)
        await producer.start()
        kafka.append(time.perf_counter() - started)
        await producer.stop()
    postgres: list[float] = []
    url = asyncpg_dsn(with_credentials(database_url, QUERY_API, stored_password(infra.state_dir, QUERY_API) or ""))
    for _ in range(rounds):
        started = time.perf_counter()
        conn = await asyncpg.connect(url)
        postgres.append(time.perf_counter() - started)
        await conn.close()
    return {
        "rounds": rounds,
        "kafka_ms": statistics.median(kafka) * 1000,
        "postgres_ms": statistics.median(postgres) * 1000,
        "secured": infra.secured,
    }


def handshakes_section(h: dict[str, Any]) -> list[str]:
    return [
        "## What authentication costs (CONTRACT §10)",
        "",
        "| measure | median of " + str(h["rounds"]) + " |",
        "| --- | --- |",
        f"| aiokafka producer started as a SCRAM-SHA-512 principal (bootstrap, SASL exchange, metadata) "
        f"| {h['kafka_ms']:.1f} ms |",
        f"| asyncpg connection opened as `renkou_query_api` (scram-sha-256) | {h['postgres_ms']:.1f} ms |",
        "",
        "Both are paid once per connection: the services keep their Kafka clients and PostgreSQL pools open, and "
        "SASL without TLS adds nothing per record once a connection is authenticated. The projector and query "
        "API figures above were measured on this secured stack (service roles, SECURITY DEFINER access-log "
        "appends, SCRAM principals); compare them with the previous run's, made before any of it.",
        "",
    ]
