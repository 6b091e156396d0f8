"""The infrastructure itself: declared topics, a migrated schema, a broker that keeps what it acknowledged."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.db.migrate import current_revision, head_revision
from services.infra.topics import load_topics
from tests.support.infra import Endpoints, kafka_options
from tests.support.stack import TEST_PARTITIONS


async def test_declared_topics_exist_with_their_configs(infra: Endpoints, namespace: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:
        specs = load_topics(namespace=namespace)
        described = await admin.describe_topics([s.name for s in specs])
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        assert partitions == {s.name: TEST_PARTITIONS for s in specs}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs])
        by_topic = {}
        for response in configs:
            for resource in response.resources:
                by_topic[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    finally:
        await admin.close()
    for spec in specs:
        for key, value in spec.config.items():
            assert by_topic[spec.name][key] == value, (spec.name, key)
    assert by_topic[f"{namespace}population.public_security.v1"]["retention.ms"] == "-1"
    assert by_topic[f"{namespace}population.resident_view.v1"]["cleanup.policy"] == "compact"


async def test_database_is_at_the_newest_migration(database_url: str) -> None:
    assert await current_revision(database_url) == head_revision()
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT value FROM renkou_meta WHERE key = 'contract'") == "v1"
    finally:
        await conn.close()


async def test_acknowledged_records_are_read_back_in_key_order(infra: Endpoints, namespace: str) -> None:
    topic = f"{namespace}population.health.v1"
    producer = AIOKafkaProducer(**kafka_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, f"{i}".encode(), key=b"11010519491231002X") for i in range(20)]
    finally:
        await producer.stop()
    assert len({m.partition for m in sent}) == 1, "one key must map to one partition"
    consumer = AIOKafkaConsumer(topic, **kafka_options(), auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 20:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "timed out reading back what the broker acknowledged"
            for records in batch.values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    assert values == [f"{i}".encode() for i in range(20)]
