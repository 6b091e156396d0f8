"""What partitions a topic has, as a started aiokafka consumer sees them: the one place renkou reaches into
aiokafka's client for it.

aiokafka's public ``consumer.topics()`` fetches the cluster's metadata but does not keep it, and
``partitions_for_topic`` answers only from what the client keeps: a consumer that has not subscribed to or been
assigned a topic knows nothing of it. Until aiokafka offers a public refresh, ``refresh_metadata`` asks its client
(``_client.force_metadata_update``, which an unsubscribed client answers with every topic); nowhere else does.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["partitions_of", "refresh_metadata"]


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Fetch the cluster's metadata into ``consumer``, so that ``partitions_for_topic`` knows every topic."""
    await consumer._client.force_metadata_update()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` in order, the metadata refreshed first; empty when the topic does not exist."""
    await refresh_metadata(consumer)
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
