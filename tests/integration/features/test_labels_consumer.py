"""Labels on the ``labels`` topic, as a producer in any language sends them (a JSON
CloudEvent in Kafka's binary mode, docs/examples/send-label.sh), are stored once;
one that cannot be stored goes to ``labels.dlq`` with the reason. Predictions on
``predictions`` are kept a batch per fetch, not one or two at a time."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from driftloop_events.topics import dlq_topic
from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, eventually, read_records

pytestmark = pytest.mark.integration


def _headers(event_id: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"/examples/kcat"),
        ("ce_type", b"driftloop.monitor.label.recorded"),
        ("content-type", b"application/json"),
    ]


async def test_a_json_label_on_the_topic_is_stored_once_and_a_malformed_one_dead_lettered(
    sqlite_server: RunningServer,
) -> None:
    model = f"churn-{uuid.uuid4().hex[:8]}"
    servers = sqlite_server.settings.kafka_bootstrap_servers
    good = (
        f'{{"requestId": "req-42", "modelName": "{model}", "groundTruth": {{"stringValue": '
        '"yes"}, "eventTime": "2030-01-02T03:04:05Z"}'
    )
    keyless = (
        f'{{"modelName": "{model}", "groundTruth": {{"stringValue": "no"}}, '
        '"eventTime": "2030-01-02T03:04:05Z"}'
    )
    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for _ in range(2):  # resent with the same id, then with another: one label
            await producer.send_and_wait("labels", good.encode(), headers=_headers("l-1"))
        await producer.send_and_wait("labels", good.encode(), headers=_headers("l-2"))
        await producer.send_and_wait("labels", keyless.encode(), headers=_headers(bad_id))
    finally:
        await producer.stop()

    async def stored() -> list[dict[str, object]] | None:
        async with httpx.AsyncClient(
            headers=auth_headers(), base_url=sqlite_server.url, timeout=30
        ) as client:
            found = (await client.get(f"/labels/{model}")).json()["labels"]
        return found or None

    labels = await eventually(stored, timeout=60)
    assert [(x["request_id"], x["ground_truth"]) for x in labels] == [("req-42", "yes")]
    assert labels[0]["event_time"] == "2030-01-02T03:04:05+00:00"

    def ours(record: object) -> bool:
        return ("ce_id", bad_id.encode()) in list(getattr(record, "headers", []))

    (dead,) = await read_records(servers, dlq_topic("labels"), ours, expected=1, timeout=60)
    reason = dict(dead.headers)["dlq.error"].decode()
    assert "request_id or entity_keys" in reason
    # Dead-lettered at once: a wrong label is wrong on the next try too.
    assert dict(dead.headers)["dlq.attempts"] == b"1"
    assert (await stored()) == labels


async def test_protobuf_labels_are_stored_once_and_bad_ones_dead_lettered_with_the_reason(
    sqlite_server: RunningServer,
) -> None:
    # Protobuf labels with the headers the envelope writes take the consumer's short
    # way (payload straight into a row); the refusals must be the same as the long way.
    from driftloop.common.v1.common_pb2 import Value
    from driftloop.monitor.v1 import events_pb2 as monitor
    from driftloop_events.envelope import CloudEvent, to_record

    model = f"churn-{uuid.uuid4().hex[:8]}"
    servers = sqlite_server.settings.kafka_bootstrap_servers

    def label(request_id: str, seconds: int = 1_900_000_000) -> monitor.LabelRecorded:
        message = monitor.LabelRecorded(
            request_id=request_id, model_name=model, ground_truth=Value(string_value="yes")
        )
        message.event_time.seconds = seconds
        return message

    good = to_record(CloudEvent.new(label("req-7"), id="good-1"))
    again = to_record(CloudEvent.new(label("req-7"), id="good-2"))
    bad = {
        f"keyless-{uuid.uuid4().hex[:8]}": (label(""), "request_id or entity_keys"),
        f"beyond-{uuid.uuid4().hex[:8]}": (label("req-8", 253_402_300_800), "out of range"),
    }
    records = [good, good, again]
    records += [to_record(CloudEvent.new(message, id=i)) for i, (message, _) in bad.items()]
    garbage_id = f"garbage-{uuid.uuid4().hex[:8]}"
    garbage = to_record(CloudEvent.new(label("req-9"), id=garbage_id))
    records.append(garbage._replace(value=b"\xff\xff\xff"))
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                "labels", record.value, key=record.key, headers=record.headers
            )
    finally:
        await producer.stop()

    async def stored() -> list[dict[str, object]] | None:
        async with httpx.AsyncClient(
            headers=auth_headers(), base_url=sqlite_server.url, timeout=30
        ) as client:
            found = (await client.get(f"/labels/{model}")).json()["labels"]
        return found or None

    labels = await eventually(stored, timeout=60)
    assert [(x["request_id"], x["ground_truth"]) for x in labels] == [("req-7", "yes")]
    assert labels[0]["event_time"] == "2030-03-17T17:46:40+00:00"

    reasons = {**{i: why for i, (_, why) in bad.items()}, garbage_id: "not a serialized"}

    def ours(record: object) -> bool:
        headers = dict(getattr(record, "headers", []))
        return headers.get("ce_id", b"").decode() in reasons

    dead = await read_records(servers, dlq_topic("labels"), ours, expected=3, timeout=60)
    got = {dict(d.headers)["ce_id"].decode(): dict(d.headers)["dlq.error"].decode() for d in dead}
    assert set(got) == set(reasons)
    for event_id, reason in reasons.items():
        assert reason in got[event_id], (event_id, got[event_id])
    assert (await stored()) == labels


async def test_predictions_sent_over_half_a_second_are_kept_in_a_few_transactions(
    sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each fetch the label consumer gets is one transaction in the label store; answered
    # at its first record, a fetch held one or two predictions sent 10 ms apart (about
    # 0.5 ms of CPU each on the service answering online reads). The broker holds it
    # until FETCH_MIN_BYTES or FETCH_MAX_WAIT_MS: one transaction per 100 ms or more
    # (on a loaded machine, more; answered at once they came every 20-40 ms here).
    from driftloop.common.v1.common_pb2 import ModelRef
    from driftloop.serving.v1 import events_pb2 as serving
    from driftloop_bus.publisher import Publisher
    from driftloop_events.envelope import CloudEvent
    from driftloop_events.topics import TOPICS
    from driftloop_events.values import make_record

    model = f"iris-{uuid.uuid4().hex[:8]}"
    labels = sqlite_server.app.state.labels
    kept_by_call: list[int] = []
    called_at: list[float] = []
    record_predictions = labels.record_predictions

    async def counted(events: list[CloudEvent[serving.PredictionLogged]]) -> int:
        kept = int(await record_predictions(events))  # stored: it did not raise
        ours = sum(event.data.model.name == model for event in events)
        if ours:
            kept_by_call.append(ours)
            called_at.append(time.monotonic())
        return kept

    monkeypatch.setattr(labels, "record_predictions", counted)

    def prediction(request_id: str) -> CloudEvent[serving.PredictionLogged]:
        logged = serving.PredictionLogged(
            request_id=request_id,
            model=ModelRef(name=model, version=1),
            inputs=[make_record({"f0": 1.0})],
            outputs=[make_record({"prediction": 1})],
        )
        return CloudEvent.new(logged)

    async def kept(count: int) -> bool | None:
        return sum(kept_by_call) == count or None

    ids = [f"req-{uuid.uuid4().hex[:10]}" for _ in range(40)]
    publisher = Publisher(
        sqlite_server.settings.kafka_bootstrap_servers, topics=[TOPICS["predictions"]]
    )
    await publisher.start()
    try:
        # One first, so that the consumer has joined its group before the others are sent.
        await publisher.publish(prediction("req-first"))
        await publisher.flush()
        await eventually(lambda: kept(1), timeout=60)
        kept_by_call.clear()
        called_at.clear()
        for request_id in ids:
            await publisher.publish(prediction(request_id))
            await publisher.flush()
            await asyncio.sleep(0.012)  # the pace of predictions, not a wait for a result
    finally:
        await publisher.stop()

    await eventually(lambda: kept(len(ids)), timeout=60)
    gaps = [later - earlier for earlier, later in itertools.pairwise(called_at)]
    assert len(gaps) >= 3, kept_by_call  # the 40 were sent over more than 300 ms
    assert statistics.median(gaps) >= 0.07, (gaps, kept_by_call)
