"""Kafka guards its own door (CONTRACT §10): SCRAM-SHA-512 on the listener, ACLs per role, checked by the broker.

Everything here is refused or allowed by the real broker's ``StandardAuthorizer``, not by renkou's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from aiokafka.partitioner import DefaultPartitioner

from services.kafka.auth import AUDITOR, PROJECTOR, KafkaCredentials, demo_department_principal, stored_credentials
from services.kafka.principals import PrincipalError, infer_role, list_principals, role_acls
from tests.support.infra import Endpoints, kafka_options
from tests.support.operations import renkou

pytestmark = pytest.mark.integration

CITIZEN = b"11010519491231002X"


@pytest.fixture(autouse=True)
def _secured(infra: Endpoints) -> None:
    if not infra.secured:
        pytest.skip("the broker of this session is not secured (testcontainers' plain broker)")


async def _send(options: dict[str, Any], topic: str) -> str:
    """``ok`` when the broker acknowledged one record, else the error's class name."""
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 15)
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=CITIZEN), 15)
    except (KafkaError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        with contextlib.suppress(KafkaError):
            await producer.stop()
    return "ok"


async def _read_one(options: dict[str, Any], topic: str) -> str:
    """``ok`` when the client received the record the admin wrote first; else what stopped it."""
    assert await _send(kafka_options(), topic) == "ok"
    partition = await _partition_of(topic)
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(consumer.start(), 15)
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batches = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=3000), 15)
    except (KafkaError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        with contextlib.suppress(KafkaError):
            await consumer.stop()
    return "ok" if any(batches.values()) else "nothing received"


async def _partition_of(topic: str) -> int:
    producer = AIOKafkaProducer(**kafka_options())
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    return int(DefaultPartitioner()(CITIZEN, partitions, partitions))


def _as(infra: Endpoints, credentials: KafkaCredentials) -> dict[str, Any]:
    return {"bootstrap_servers": infra.kafka_bootstrap, **credentials.aiokafka_options()}


async def test_an_unauthenticated_client_is_refused(infra: Endpoints, namespace: str) -> None:
    outcome = await _send({"bootstrap_servers": infra.kafka_bootstrap}, f"{namespace}population.public_security.v1")
    assert outcome == KafkaConnectionError.__name__  # the SASL listener closes a connection that does not authenticate


async def test_a_wrong_password_is_refused(infra: Endpoints, namespace: str) -> None:
    forged = KafkaCredentials(demo_department_principal("health"), "not-the-password")
    outcome = await _send(_as(infra, forged), f"{namespace}population.health.v1")
    assert outcome == KafkaConnectionError.__name__


async def test_a_department_writes_its_own_topic_and_no_other(infra: Endpoints, namespace: str) -> None:
    health = stored_credentials(infra.state_dir, demo_department_principal("health"))
    assert health is not None
    assert await _send(_as(infra, health), f"{namespace}population.health.v1") == "ok"
    refused = await _send(_as(infra, health), f"{namespace}population.public_security.v1")
    assert refused == TopicAuthorizationFailedError.__name__
    # ...and it cannot read anyone's topic, its own included (writing is all its role allows).
    assert await _read_one(_as(infra, health), f"{namespace}population.health.v1") != "ok"
    # The admin reads it back (the check above cannot pass for want of a record).
    assert await _read_one(kafka_options(), f"{namespace}population.health.v1") == "ok"


async def test_services_hold_only_their_roles(infra: Endpoints, namespace: str) -> None:
    projector = stored_credentials(infra.state_dir, PROJECTOR)
    auditor = stored_credentials(infra.state_dir, AUDITOR)
    assert projector is not None and auditor is not None
    # The projector reads department topics but cannot write one (it could forge events otherwise).
    refused = await _send(_as(infra, projector), f"{namespace}population.public_security.v1")
    assert refused == TopicAuthorizationFailedError.__name__
    # The auditor reads no department topic and no view.
    assert await _read_one(_as(infra, auditor), f"{namespace}population.health.v1") != "ok"
    assert await _read_one(_as(infra, auditor), f"{namespace}population.resident_view.v1") != "ok"


async def test_principals_are_managed_from_the_cli(infra: Endpoints, namespace: str) -> None:
    """`renkou kafka users add` prints a password once; the principal holds its role; `remove` takes it away."""
    from tests.support.projector import settings_for

    settings = settings_for(infra.kafka_bootstrap, "postgresql+asyncpg://unused:unused@127.0.0.1:9/none", namespace)
    name = f"edu-{uuid.uuid4().hex[:8]}"
    added = await renkou(settings, "kafka", "users", "add", name, "--role", "department:education")
    assert added.code == 0, added.stderr
    password = added.stdout.strip().splitlines()[-1]
    credentials = KafkaCredentials(name, password)
    assert await _send(_as(infra, credentials), f"{namespace}population.education.v1") == "ok"
    assert (
        await _send(_as(infra, credentials), f"{namespace}population.health.v1")
        == TopicAuthorizationFailedError.__name__
    )

    listed = await renkou(settings, "kafka", "users", "list")
    assert listed.code == 0 and name in listed.stdout

    removed = await renkou(settings, "kafka", "users", "remove", name)
    assert removed.code == 0, removed.stderr
    assert await _send(_as(infra, credentials), f"{namespace}population.education.v1") == KafkaConnectionError.__name__

    again = await renkou(settings, "kafka", "users", "remove", name)
    assert again.code == 4 and "no Kafka principal" in again.stderr
    bad = await renkou(settings, "kafka", "users", "add", "x", "--role", "department:police")
    assert bad.code == 2 and "unknown role" in bad.stderr


async def test_the_stack_principals_are_listed_with_their_roles(infra: Endpoints) -> None:
    principals = {
        p.name: p.role for p in await asyncio.to_thread(list_principals, infra.kafka_bootstrap, infra.kafka_admin)
    }
    assert principals[PROJECTOR] == "projector"
    assert principals[demo_department_principal("health")] == "department:health"


def test_roles_are_exactly_their_bindings() -> None:
    for role in ("gateway", "projector", "view-relay", "auditor", "operator", "department:health", "consumer:school"):
        assert infer_role(role_acls(role)) == role
    with pytest.raises(PrincipalError):
        role_acls("superuser")
    # No role but the operator's may write a department topic it does not own.
    writers = {
        role
        for role in ("gateway", "projector", "view-relay", "auditor", "department:health", "consumer:school")
        for acl in role_acls(role)
        if acl.operation == "WRITE" and acl.name == "population.public_security.v1"
    }
    assert writers == {"gateway"}


async def test_test_helpers_default_to_the_admin(infra: Endpoints) -> None:
    assert kafka_options()["sasl_plain_username"] == "renkou-admin"
