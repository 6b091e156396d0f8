"""Per-consumer view topics (CONTRACT §11) over the real secured stack: the view relay fills a grant's own topic
with its purpose's sections only, records every delivery in the access log first, sends a view again only when
what the consumer sees of it changed, stops at a revocation; the consumer's principal reads its topic and not the
main view topic."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAuthorizationFailedError

from events import consumer_view_topic
from events.examples import CITIZENS, example_events
from projections.resident.flags import FLAG_SECTIONS
from services.db.dsn import asyncpg_dsn
from services.kafka.auth import KafkaCredentials
from services.kafka.principals import grant_role, upsert_users
from tests.support.infra import Endpoints, kafka_options
from tests.support.projector import publish, running_projector, running_view_relay, settings_for, wait_caught_up
from tests.support.query_api import event, grant
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

MIGRANT, PUPIL, CHILD = CITIZENS["migrant"], CITIZENS["pupil"], CITIZENS["child"]
CONSUMER = "school-feed"
SECTIONS = ("identity", "education", "family", "flags")


@pytest.fixture(autouse=True)
def _secured(infra: Endpoints) -> None:
    if not infra.secured:
        pytest.skip("the broker of this session is not secured (testcontainers' plain broker)")


class Reader:
    """The consumer's principal reading a topic from the beginning, collecting every record by key."""

    def __init__(self, options: dict[str, Any], topic: str, group: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, **options, auto_offset_reset="earliest", enable_auto_commit=False, group_id=group
        )
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for batch in (await self.consumer.getmany(timeout_ms=300)).values():
                self.records += [(r.key.decode(), orjson.loads(r.value)) for r in batch]

    async def until(self, done: Any, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            await self.poll(0.3)
        assert done(), f"after {seconds:.0f}s: {len(self.records)} records"

    def latest(self) -> dict[str, dict[str, Any]]:
        return dict(self.records)


async def _outbox_empty(database_url: str, seconds: float = 60.0) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        deadline = time.monotonic() + seconds
        while await conn.fetchval("SELECT count(*) FROM projection.view_outbox"):
            assert time.monotonic() < deadline, "the view relay did not drain its outbox"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _deliveries(database_url: str, topic: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(
            await conn.fetch(
                "SELECT citizen_id, consumer, purpose, sections, endpoint, request_id FROM access_log "
                "WHERE consumer = $1 AND endpoint = $2 ORDER BY citizen_id, chain_seq",
                CONSUMER,
                f"kafka:{topic}",
            )
        )
    finally:
        await conn.close()


async def _until_created(topic: str, seconds: float = 30.0) -> None:
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:
        deadline = time.monotonic() + seconds
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} was not created"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


@pytest.fixture
async def setup(infra: Endpoints) -> AsyncIterator[tuple[Any, str, dict[str, Any]]]:
    databases = Databases(infra)
    db = await databases.create()
    ns = await create_namespace(infra)
    history = sorted(example_events().values(), key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    await publish(
        infra.kafka_bootstrap,
        [
            (f"{ns}population.{e['source']['department']}.v1", e["citizen_id"].encode(), orjson.dumps(e))
            for e in history
        ],
    )
    password = secrets.token_urlsafe(24)
    await asyncio.to_thread(upsert_users, infra.kafka_bootstrap, infra.kafka_admin, [(CONSUMER, password)])
    await asyncio.to_thread(
        grant_role, infra.kafka_bootstrap, infra.kafka_admin, [(CONSUMER, f"consumer:{CONSUMER}")], ns
    )
    options = {"bootstrap_servers": infra.kafka_bootstrap, **KafkaCredentials(CONSUMER, password).aiokafka_options()}
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    try:
        yield settings, db, options
    finally:
        await databases.drop_all()


async def test_a_consumer_topic_carries_its_purpose_sections_and_every_delivery_is_recorded(
    infra: Endpoints, setup: tuple[Any, str, dict[str, Any]]
) -> None:
    settings, db, options = setup
    ns = settings.topic_namespace
    topic = ns + consumer_view_topic(CONSUMER)
    async with running_projector(settings), running_view_relay(settings):
        await wait_caught_up(settings)
        await _outbox_empty(db)
        # The grant comes after the residents: the relay creates the topic and brings it up to date.
        await grant(
            db,
            CONSUMER,
            by_purpose={"school_enrolment": [*SECTIONS, "eligibility"], "statistics": ["statistics", "hukou"]},
            view_topic="school_enrolment",
        )
        conn = await asyncpg.connect(asyncpg_dsn(db))
        try:
            residents = {
                r["citizen_id"] for r in await conn.fetch("SELECT DISTINCT citizen_id FROM projection.sections")
            }
        finally:
            await conn.close()
        await _until_created(topic)  # once the relay has seen the grant
        reader = Reader(options, topic, f"{ns}{CONSUMER}.test")  # groups named after the consumer
        await reader.consumer.start()
        try:
            await reader.until(lambda: set(reader.latest()) == residents)
            for cid, view in reader.latest().items():
                # Only the purpose's view sections (not the statistics purpose's hukou), and no flag that speaks
                # of a section it does not have.
                assert set(view) - {"aliases"} == {"citizen_id", *SECTIONS}, cid
                for flag in view["flags"]:
                    assert FLAG_SECTIONS[flag["code"]] <= set(SECTIONS), flag
            assert reader.latest()[CHILD]["family"]["mother"] == CITIZENS["mother"]

            # Every delivery was recorded first: one entry per resident, all of one batch under one request.
            delivered = await _deliveries(db, topic)
            assert sorted(r["citizen_id"] for r in delivered) == sorted(residents)
            assert {(r["purpose"], tuple(r["sections"])) for r in delivered} == {("school_enrolment", SECTIONS)}
            assert len({r["request_id"] for r in delivered}) == 1

            # An event the consumer's sections do not show: the main topic changes, the consumer's does not.
            seen = len(reader.records)
            await publish(
                infra.kafka_bootstrap,
                [
                    (
                        f"{ns}population.social_security.v1",
                        MIGRANT.encode(),
                        orjson.dumps(event("employment.registered", MIGRANT, date(2025, 5, 1))),
                    )
                ],
            )
            await wait_caught_up(settings)
            await _outbox_empty(db)
            await reader.poll(2.0)
            assert len(reader.records) == seen
            assert len(await _deliveries(db, topic)) == len(residents)

            # One it does show: delivered, and recorded.
            moved = event("student.transferred", PUPIL, date(2025, 9, 1), school_code="2151010799")
            await publish(
                infra.kafka_bootstrap, [(f"{ns}population.education.v1", PUPIL.encode(), orjson.dumps(moved))]
            )
            await reader.until(lambda: len(reader.records) > seen)
            assert [cid for cid, _ in reader.records[seen:]] == [PUPIL]
            assert reader.records[-1][1]["education"]["current"]["school_code"] == "2151010799"
            assert [r["citizen_id"] for r in await _deliveries(db, topic)].count(PUPIL) == 2

            # Revoked: nothing more is delivered (nor recorded).
            conn = await asyncpg.connect(asyncpg_dsn(db))
            try:
                await conn.execute("UPDATE consumer_grants SET revoked_at = now() WHERE name = $1", CONSUMER)
            finally:
                await conn.close()
            seen = len(reader.records)
            again = event("student.transferred", PUPIL, date(2026, 2, 1), school_code="2151010798")
            await publish(
                infra.kafka_bootstrap, [(f"{ns}population.education.v1", PUPIL.encode(), orjson.dumps(again))]
            )
            await wait_caught_up(settings)
            await _outbox_empty(db)
            await reader.poll(2.0)
            assert len(reader.records) == seen
            assert [r["citizen_id"] for r in await _deliveries(db, topic)].count(PUPIL) == 2
        finally:
            await reader.consumer.stop()


async def test_the_main_view_topic_is_refused_to_a_consumer(
    infra: Endpoints, setup: tuple[Any, str, dict[str, Any]]
) -> None:
    settings, _, options = setup
    consumer = AIOKafkaConsumer(
        settings.topic_namespace + "population.resident_view.v1",
        **options,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{settings.topic_namespace}{CONSUMER}.main",
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=3000), 15)
    finally:
        await consumer.stop()


async def test_a_consumer_whose_topic_cannot_be_made_holds_up_no_one(
    infra: Endpoints, setup: tuple[Any, str, dict[str, Any]]
) -> None:
    settings, db, options = setup
    ns = settings.topic_namespace
    await grant(db, CONSUMER, by_purpose={"school_enrolment": list(SECTIONS)}, view_topic="school_enrolment")
    # Two grants stored behind add_grant's back whose topics Kafka cannot both have ('.' and '_' collide in
    # topic names): one of them cannot be created.
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        for name, token in (("city.feed", b"\x01"), ("city_feed", b"\x02")):
            await conn.execute(
                "INSERT INTO consumer_grants (name, token_hash, sections, purposes, purpose_sections, view_topic) "
                "VALUES ($1, $2, '{identity}', '{school_enrolment}', '{\"school_enrolment\": [\"identity\"]}', "
                "'school_enrolment')",
                name,
                token,
            )
    finally:
        await conn.close()
    async with running_projector(settings), running_view_relay(settings):
        await wait_caught_up(settings)
        await _outbox_empty(db)
        topic = ns + consumer_view_topic(CONSUMER)
        await _until_created(topic)
        reader = Reader(options, topic, f"{ns}{CONSUMER}.stall")
        await reader.consumer.start()
        try:
            await reader.until(lambda: CITIZENS["pupil"] in reader.latest())
        finally:
            await reader.consumer.stop()
        admin = AIOKafkaAdminClient(**kafka_options())
        await admin.start()
        try:
            made = {t for t in await admin.list_topics() if t.startswith(ns + consumer_view_topic("city"))}
        finally:
            await admin.close()
        assert len(made) == 1, made  # Kafka made one of the two colliding topics, and the relay went on
