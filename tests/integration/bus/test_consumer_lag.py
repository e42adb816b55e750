"""Consumer lag per group and partition on /metrics, over the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TopicSpec

from .helpers import eventually

pytestmark = pytest.mark.integration


async def test_lag_counts_the_records_not_yet_handled_and_falls_to_zero(
    broker: EmbeddedBroker,
) -> None:
    topic = f"test.lag.{uuid.uuid4().hex[:8]}"
    group = f"lag-{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    for version in range(1, 11):
        event = CloudEvent.new(registry.AliasSet(name="m", alias="champion", version=version))
        await (await publisher.publish(event, topic=topic))
    handled: list[int] = []
    release = asyncio.Event()

    async def slow(event: CloudEvent[registry.AliasSet]) -> None:
        if len(handled) == 4:
            await release.wait()  # the fifth waits: 4 of 10 handled, in batches of 2
        handled.append(event.data.version)

    runner = ConsumerRunner(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=group,
        handlers={registry.AliasSet: [slow]},
        publisher=publisher,
        topics=[topic],
        max_poll_records=2,
    )

    def lag() -> float | None:
        labels = {"group": group, "topic": topic, "partition": "0"}
        return REGISTRY.get_sample_value("driftloop_consumer_lag", labels)

    await runner.start()
    try:
        await eventually(lambda: _equals(lag(), 6.0), timeout=60)
        # Not caught up while records it was given at start wait (a readiness check).
        assert runner.caught_up is False
        release.set()
        await eventually(lambda: _equals(lag(), 0.0), timeout=60)
        await eventually(lambda: _equals(runner.caught_up, True), timeout=10)
    finally:
        await runner.stop()
        await publisher.stop()
    assert handled == list(range(1, 11))


async def _equals(value: float | bool | None, expected: float | bool) -> bool:
    return value == expected
