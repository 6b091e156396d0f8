"""Create renkou's topics from ``infra/topics.toml``, idempotently."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.settings import project_root

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient

    from services.kafka.auth import KafkaCredentials

TOPICS_FILE = project_root() / "infra" / "topics.toml"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def load_topics(
    path: Path = TOPICS_FILE, *, namespace: str = "", partitions: int | None = None, brokers: int = 1
) -> list[TopicSpec]:
    """The declared topics, names prefixed by ``namespace``; ``partitions`` overrides the declared count.

    On a cluster of three or more ``brokers`` every topic gets three replicas and ``min.insync.replicas=2``
    (a write acknowledged to ``acks=all`` is on two brokers at least), whatever the file declares for one."""
    doc = tomllib.loads(path.read_text())
    defaults = doc.get("defaults", {})
    specs = []
    for entry in doc["topic"]:
        replication = int(entry.get("replication_factor", defaults.get("replication_factor", 1)))
        config = {k: str(v) for k, v in entry.get("config", {}).items()}
        if brokers >= 3:
            replication = max(replication, 3)
            config.setdefault("min.insync.replicas", "2")
        specs.append(
            TopicSpec(
                name=namespace + entry["name"],
                partitions=partitions or int(entry.get("partitions", defaults.get("partitions", 12))),
                replication_factor=replication,
                config=config,
            )
        )
    return specs


def _admin(bootstrap: str, credentials: KafkaCredentials | None) -> AIOKafkaAdminClient:
    from aiokafka.admin import AIOKafkaAdminClient

    from services.kafka.auth import bootstrap_servers

    options = credentials.aiokafka_options() if credentials is not None else {}
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(bootstrap), **options)


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], credentials: KafkaCredentials | None) -> list[str]:
    """Create every topic in ``specs`` that does not exist yet (as ``credentials``' principal, an admin's);
    return the names created."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, credentials)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            # Another process may create one between our listing and our request: that is the goal anyway.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config) for s in missing]
                )
            await _wait_until_led(admin, missing)
        return [s.name for s in missing]
    finally:
        await admin.close()


async def replicas_of(bootstrap: str, topic: str, credentials: KafkaCredentials | None) -> int | None:
    """How many replicas the partitions of an existing ``topic`` have (``None`` if it does not exist)."""
    admin = _admin(bootstrap, credentials)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [p for t in described if t["topic"] == topic and not t["error_code"] for p in t["partitions"]]
    return max((len(p["replicas"]) for p in partitions), default=None)


async def delete_topics_with_prefixes(
    bootstrap: str, prefixes: Iterable[str], credentials: KafkaCredentials | None
) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes`` (namespaced test or benchmark topics).

    An empty prefix is refused: it would name the contract's own topics. Returns the names deleted.
    """
    wanted = tuple(prefixes)
    if any(not p for p in wanted):
        raise ValueError("an empty prefix would delete the contract's own topics")
    if not wanted:
        return []
    admin = _admin(bootstrap, credentials)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(wanted)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def _wait_until_led(admin: AIOKafkaAdminClient, specs: list[TopicSpec], wait_s: float = 30.0) -> None:
    """Return once every partition of ``specs`` has a leader: a topic is usable only then."""
    deadline = asyncio.get_running_loop().time() + wait_s
    wanted = {s.name: s.partitions for s in specs}
    while True:
        described = await admin.describe_topics(list(wanted))
        ready = {
            t["topic"]
            for t in described
            if len(t["partitions"]) == wanted[t["topic"]] and all(p["leader"] >= 0 for p in t["partitions"])
        }
        if ready == set(wanted):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics without leaders after {wait_s:.0f}s: {sorted(set(wanted) - ready)}")
        await asyncio.sleep(0.1)
