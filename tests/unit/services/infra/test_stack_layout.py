"""The local stack's layout: one broker or a cluster of three on one machine (CONTRACT §13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from services.db.dsn import asyncpg_dsn
from services.db.roles import with_credentials
from services.infra.ports import BROKERS_FILE, STANDBY_FILE, StackLayout
from services.infra.process import InfraError
from services.infra.topics import load_topics
from services.kafka.auth import bootstrap_servers
from services.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9092")


def test_a_new_stack_has_one_broker_unless_asked_for_three(tmp_path: Path) -> None:
    assert StackLayout.from_settings(_settings(tmp_path)).kafka_bootstrap == "127.0.0.1:9092"
    three = StackLayout.from_settings(_settings(tmp_path), kafka_brokers=3)
    assert [three.broker_ports(n) for n in (1, 2, 3)] == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert bootstrap_servers(three.kafka_bootstrap) == ["127.0.0.1:9092", "127.0.0.1:9094", "127.0.0.1:9096"]


def test_an_existing_stack_keeps_its_number_of_brokers(tmp_path: Path) -> None:
    (tmp_path / BROKERS_FILE).parent.mkdir(parents=True)
    (tmp_path / BROKERS_FILE).write_text("3\n")
    assert StackLayout.from_settings(_settings(tmp_path)).kafka_brokers == 3
    with pytest.raises(InfraError, match="created with 3 broker"):
        StackLayout.from_settings(_settings(tmp_path), kafka_brokers=1)


def test_two_brokers_are_no_quorum(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="1 or 3"):
        StackLayout.from_settings(_settings(tmp_path), kafka_brokers=2)


def test_topics_on_a_cluster_have_three_replicas_two_in_sync() -> None:
    single = load_topics(namespace="x.")
    cluster = load_topics(namespace="x.", brokers=3)
    assert {s.replication_factor for s in single} == {1}
    assert all("min.insync.replicas" not in s.config for s in single)
    assert {s.replication_factor for s in cluster} == {3}
    assert {s.config["min.insync.replicas"] for s in cluster} == {"2"}
    # Everything else the file declares is kept.
    assert [s.name for s in single] == [s.name for s in cluster]
    assert all(c.config.items() >= s.config.items() for s, c in zip(single, cluster, strict=True))


def test_a_bootstrap_list_is_split_for_the_clients() -> None:
    assert bootstrap_servers("a:1, b:2,,c:3") == ["a:1", "b:2", "c:3"]
    with pytest.raises(ValueError, match="names no broker"):
        bootstrap_servers(" , ")


def test_a_stack_with_a_standby_names_both_servers_and_keeps_to_the_writable_one(tmp_path: Path) -> None:
    layout = StackLayout.from_settings(_settings(tmp_path), pg_standby=True)
    assert layout.pg_standby and layout.pg_standby_port == 5434
    url = layout.database_url
    assert url.endswith("@/renkou?host=127.0.0.1:5433&host=127.0.0.1:5434&target_session_attrs=read-write")
    # asyncpg takes the hosts in the authority; the services' own URLs come from it with their roles.
    assert asyncpg_dsn(url).endswith("@127.0.0.1:5433,127.0.0.1:5434/renkou?target_session_attrs=read-write")
    again = StackLayout.from_settings(Settings(state_dir=tmp_path, database_url=SecretStr(url)))
    assert (again.pg_port, again.pg_database) == (5433, "renkou")
    assert asyncpg_dsn(with_credentials(url, "renkou_gateway", "p@ss")).startswith(
        "postgresql://renkou_gateway:p%40ss@"
    )


def test_a_stack_made_with_a_standby_keeps_it(tmp_path: Path) -> None:
    (tmp_path / STANDBY_FILE).parent.mkdir(parents=True)
    (tmp_path / STANDBY_FILE).write_text("synchronous\n")
    assert StackLayout.from_settings(_settings(tmp_path)).pg_standby


def test_a_single_server_url_is_left_as_it_was() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u:p@127.0.0.1:5433/renkou") == "postgresql://u:p@127.0.0.1:5433/renkou"
    assert asyncpg_dsn("postgresql://u@h/db?sslmode=require") == "postgresql://u@h/db?sslmode=require"
