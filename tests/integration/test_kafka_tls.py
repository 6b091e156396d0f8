"""TLS on the client listener (``RENKOU_KAFKA_TLS=1``): a broker of its own, with the local CA ``renkou up`` makes.

SCRAM keeps passwords off the wire already; TLS also keeps the records themselves from anyone on the path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.infra.kafka import KafkaCluster
from services.infra.ports import StackLayout, free_port
from services.infra.topics import ensure_topics, load_topics
from services.kafka.auth import KafkaCredentials, demo_department_principal, stored_credentials
from services.kafka.principals import ensure_stack_principals
from tests.support.infra import Endpoints

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackLayout, KafkaCluster]]:
    port = free_port()
    controller = free_port()
    layout = StackLayout(
        state_dir=Path(tmp_path_factory.mktemp("tls-stack")),
        kafka_port=port,
        controller_port=controller,
        pg_port=1,
        pg_user="unused",
        pg_password="unused",
        pg_database="unused",
        kafka_tls=True,
    )
    server = KafkaCluster(layout)
    server.start()
    try:
        yield layout, server
    finally:
        server.stop()


async def test_a_tls_listener_carries_scram_clients_and_refuses_plain_ones(
    infra: Endpoints, tls_broker: tuple[StackLayout, KafkaCluster]
) -> None:
    layout, server = tls_broker
    admin = server.admin_credentials()
    assert admin is not None and admin.ca_file is not None and admin.ca_file.exists()
    await ensure_topics(layout.kafka_bootstrap, load_topics(partitions=1), admin)
    await asyncio.to_thread(ensure_stack_principals, layout.kafka_bootstrap, admin, layout.state_dir)
    stored = stored_credentials(layout.state_dir, demo_department_principal("health"), tls=True)
    assert stored is not None
    options = {"bootstrap_servers": layout.kafka_bootstrap, **stored.aiokafka_options()}
    assert options["security_protocol"] == "SASL_SSL"

    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait("population.health.v1", b"{}", key=b"11010519491231002X")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "population.health.v1",
        **admin.aiokafka_options(),
        bootstrap_servers=layout.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    assert [r.offset for records in batch.values() for r in records] == [sent.offset]

    # The same principal without TLS does not get through: the listener speaks TLS first.
    plain = KafkaCredentials(stored.username, stored.password)
    refused = AIOKafkaProducer(bootstrap_servers=layout.kafka_bootstrap, **plain.aiokafka_options())
    with pytest.raises((KafkaError, TimeoutError)):
        await asyncio.wait_for(refused.start(), 20)
    with contextlib.suppress(KafkaError):
        await refused.stop()
