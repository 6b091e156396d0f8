"""Three Kafka brokers on one machine (CONTRACT §13; `renkou up --kafka-brokers 3`): a quorum of three KRaft
controllers, every topic on all three with ``min.insync.replicas=2``. SIGKILL one broker while the gateway takes
events: the gateway and the projector go on, and every event the gateway answered 202 is in the archive exactly
once.

Run alone with ``pytest -m cluster``. The cluster is this test's own (its own ports and folder), started from the
same jars as the session's broker; PostgreSQL is the session's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta

import asyncpg
import httpx
import pytest

from events import DEPARTMENTS, make_citizen_id
from services.db.dsn import asyncpg_dsn
from services.gateway.app import create_app as gateway_app
from services.gateway.auth import issue_token
from services.infra.kafka import KafkaCluster, cluster_brokers
from services.infra.ports import StackLayout
from services.infra.process import alive
from services.infra.topics import ensure_topics, load_topics
from services.kafka.principals import ensure_stack_principals
from tests.support.cluster import cluster_layout
from tests.support.infra import Endpoints, current
from tests.support.projector import assert_archived_once, running_projector, settings_for, wait_caught_up
from tests.support.query_api import event

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

EVENTS = 240
KILL_AFTER = 80


@pytest.fixture(scope="module")
def cluster(infra: Endpoints) -> Iterator[tuple[StackLayout, KafkaCluster]]:
    if not infra.secured:
        pytest.skip("the cluster test runs with the local launchers' secured broker")
    # The session's Kafka secrets: the cluster's admin and every service principal get the same passwords, so
    # the services (whose state folder is the session's, for PostgreSQL's roles too) sign in to either.
    layout = cluster_layout(current().state_dir, "test-cluster", 29092)
    kafka = KafkaCluster(layout)
    try:
        kafka.start()
        yield layout, kafka
    finally:
        kafka.stop()
        shutil.rmtree(layout.state_dir, ignore_errors=True)


def test_the_cluster_has_three_brokers_and_replicates_every_topic(
    cluster: tuple[StackLayout, KafkaCluster],
) -> None:
    layout, kafka = cluster
    assert layout.kafka_bootstrap.count(",") == 2
    assert asyncio.run(cluster_brokers(layout.kafka_bootstrap, kafka.admin_credentials())) == 3
    specs = load_topics(namespace="x.", brokers=3)
    assert all(s.replication_factor == 3 and s.config["min.insync.replicas"] == "2" for s in specs)
    for node in kafka.nodes:
        config = node.config.read_text()
        assert f"node.id={node.node}\n" in config and "min.insync.replicas=2\n" in config
        assert config.count("@127.0.0.1:") == 3  # every node knows the three voters


@pytest.fixture
async def namespace_on(cluster: tuple[StackLayout, KafkaCluster]) -> AsyncIterator[str]:
    layout, kafka = cluster
    ns = f"c{uuid.uuid4().hex[:8]}."
    admin = kafka.admin_credentials()
    await ensure_topics(layout.kafka_bootstrap, load_topics(namespace=ns, partitions=3, brokers=3), admin)
    await asyncio.to_thread(ensure_stack_principals, layout.kafka_bootstrap, admin, layout.state_dir, ns)
    yield ns


async def test_losing_a_broker_mid_stream_loses_and_doubles_nothing(
    cluster: tuple[StackLayout, KafkaCluster], namespace_on: str, database_url: str
) -> None:
    layout, kafka = cluster
    settings = settings_for(layout.kafka_bootstrap, database_url, namespace_on)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tokens = {d: await issue_token(conn, d, "cluster-test") for d in DEPARTMENTS}
    finally:
        await conn.close()
    victim = kafka.nodes[1]
    victim_pid = victim.pid()
    assert victim_pid is not None
    answers: list[tuple[str, int]] = []
    app = gateway_app(settings)
    async with running_projector(settings), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
            for i in range(EVENTS):
                if i == KILL_AFTER:
                    os.kill(victim_pid, signal.SIGKILL)  # our own broker, by its PID
                cid = make_citizen_id("510107", date(2001, 1, 1) + timedelta(days=i), 7)
                body = event("birth.registered", cid, date(2001, 1, 1) + timedelta(days=i))
                response = await client.post(
                    "/v1/events", json=body, headers={"Authorization": f"Bearer {tokens['public_security']}"}
                )
                answers.append((body["event_id"], response.status_code))
        assert not alive(victim_pid)
        await wait_caught_up(settings, wait_s=180)
        still = await cluster_brokers(layout.kafka_bootstrap, kafka.admin_credentials())
    # While the cluster elects new leaders a request may be answered 503 (try again); never anything else, and
    # the gateway goes on accepting once it has.
    assert {code for _, code in answers} <= {202, 503}, answers
    assert all(code == 202 for _, code in answers[-40:])
    accepted = [eid for eid, code in answers if code == 202]
    assert len(accepted) >= EVENTS - 40
    await assert_archived_once(database_url, accepted)
    assert still == 2
