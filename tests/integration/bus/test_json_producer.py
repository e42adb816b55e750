"""A producer in another language: a JSON label CloudEvent in Kafka's binary mode, the
record docs/examples/send-label.sh makes with kcat (headers and value as docs/events.md
says), is read by the suite's consumer; a malformed one is dead-lettered with the reason.

The record is produced with aiokafka, not with kcat itself: Debian's kcat (librdkafka
2.0.2) cannot talk to the embedded tansu broker (its ApiVersions v3 answer fails to
parse: "Protocol read buffer underflow for ApiVersion v3 at 274/279"), and no other
broker runs here. Against Apache Kafka the script sends this same record.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TopicSpec, dlq_topic
from driftloop_kit.retry import Backoff

from .helpers import eventually, read_topic

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "send-label.sh"


def example_headers(request_id: str, event_time: str) -> list[tuple[str, bytes]]:
    """The ``-H name=value`` headers of the example script, filled in."""
    script = EXAMPLE.read_text()
    found = re.findall(r'-H "([a-z_-]+)=([^"]*)"', script)
    assert {name for name, _ in found} >= {"ce_specversion", "ce_id", "ce_type", "content-type"}
    values = {"${request_id}": request_id, "${event_time}": event_time}
    headers = []
    for name, template in found:
        value = template
        for placeholder, filled in values.items():
            value = value.replace(placeholder, filled)
        headers.append((name, value.encode()))
    return headers


async def test_a_json_label_as_the_kcat_example_sends_it_is_read_and_a_malformed_one_dead_lettered(
    broker: EmbeddedBroker,
) -> None:
    topic = f"test.labels.{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    when = "2030-01-02T03:04:05Z"
    good = (
        '{"requestId": "req-42", "modelName": "churn", "groundTruth": {"stringValue": "yes"}, '
        f'"eventTime": "{when}"}}'
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, good.encode(), key=b"req-42", headers=example_headers("req-42", when)
        )
        broken = [(k, b"broken-1" if k == "ce_id" else v) for k, v in example_headers("x", when)]
        await producer.send_and_wait(
            topic, b'{"requestId": "req-43", "groundTruth": ', key=b"req-43", headers=broken
        )
    finally:
        await producer.stop()

    labels: list[CloudEvent[monitor.LabelRecorded]] = []

    async def on_label(event: CloudEvent[monitor.LabelRecorded]) -> None:
        labels.append(event)

    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    runner = ConsumerRunner(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"kcat-{uuid.uuid4().hex[:8]}",
        handlers={monitor.LabelRecorded: [on_label]},
        publisher=publisher,
        topics=[topic],
        retry=Backoff(attempts=2, initial=0.01),
    )
    await runner.start()
    try:
        await eventually(lambda: _any(labels), timeout=60)
        (dead,) = await read_topic(broker.bootstrap_servers, dlq_topic(topic), expected=1)
    finally:
        await runner.stop()
        await publisher.stop()

    (label,) = labels
    assert (label.id, label.source) == ("label-req-42", "/examples/kcat")
    assert label.time == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert label.data.request_id == "req-42"
    assert label.data.model_name == "churn"
    assert label.data.ground_truth.string_value == "yes"
    assert label.data.event_time.ToDatetime(UTC) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = dict(dead.headers)
    assert headers["ce_id"] == b"broken-1"
    assert headers["dlq.error"]  # the reason the record could not be read


async def _any(items: list[CloudEvent[monitor.LabelRecorded]]) -> bool:
    return bool(items)
