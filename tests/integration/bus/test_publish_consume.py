"""Publish → consume over the real broker, with per-key order."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import JSON, PROTOBUF, CloudEvent
from driftloop_events.topics import TOPICS

from .helpers import eventually

pytestmark = pytest.mark.integration


def alias_set(model: str, version: int) -> CloudEvent[registry.AliasSet]:
    return CloudEvent.new(registry.AliasSet(name=model, alias="champion", version=version))


async def test_events_of_one_key_arrive_in_order_in_one_partition(broker: EmbeddedBroker) -> None:
    topic = f"test.order.{uuid.uuid4().hex[:8]}"
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)

    async def record(event: CloudEvent[registry.AliasSet]) -> None:
        seen[event.data.name].append(event.data.version)

    runner = ConsumerRunner(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"order-{uuid.uuid4().hex[:8]}",
        handlers={registry.AliasSet: [record]},
        publisher=publisher,
        topics=[topic],
    )
    # Same partition count as the real topic, so keys spread over partitions.
    from driftloop_bus.topics import ensure_topics
    from driftloop_events.topics import TopicSpec

    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 3, 3_600_000, "test")])
    models = [f"model-{i}" for i in range(6)]
    futures = []
    for version in range(1, 51):
        for i, model in enumerate(models):
            content_type = JSON if (version + i) % 2 else PROTOBUF  # consumers accept both
            futures.append(
                await publisher.publish(
                    alias_set(model, version), topic=topic, content_type=content_type
                )
            )
    for metadata, model in zip(
        await asyncio.gather(*futures), [m for _ in range(50) for m in models], strict=True
    ):
        partitions[model].add(metadata.partition)

    await runner.start()
    try:
        await eventually(lambda: _all_seen(seen, models, 50), timeout=60)
    finally:
        await runner.stop()
        await publisher.stop()

    for model in models:
        assert seen[model] == list(range(1, 51)), f"{model} out of order: {seen[model]}"
        assert len(partitions[model]) == 1, f"{model} spread over partitions {partitions[model]}"
    assert len({p for ps in partitions.values() for p in ps}) > 1, (
        "keys should use several partitions"
    )


async def _all_seen(seen: dict[str, list[int]], models: list[str], count: int) -> bool:
    return all(len(seen[m]) >= count for m in models)


async def test_declared_topics_are_created_with_their_partitions(broker: EmbeddedBroker) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    publisher = Publisher(broker.bootstrap_servers, topics=[TOPICS["registry.models"]])
    await publisher.start()
    await publisher.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        (description,) = await admin.describe_topics(["registry.models"])
    finally:
        await admin.close()
    assert len(description["partitions"]) == TOPICS["registry.models"].partitions
