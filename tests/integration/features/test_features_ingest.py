"""Kafka ingestion on the embedded defaults: rows from a plain producer reach the online
store within seconds, bad rows go to the DLQ with the reason, watermarks are published."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import JSON, KafkaRecord
from driftloop_events.topics import dlq_topic
from driftloop_features.entrypoints.ingest import BusIngest, FaustIngest

from .conftest import (
    RunningServer,
    event_of,
    eventually,
    feature_row,
    features_settings,
    measurements,
    new_flower_ids,
    online_values,
    produce,
    read_records,
)

pytestmark = pytest.mark.integration

FEATURES = ["iris_features:sepal_length", "iris_features:site"]


async def test_rows_produced_with_aiokafka_appear_in_online_retrieval_within_seconds(
    sqlite_server: RunningServer,
) -> None:
    ids = new_flower_ids(3)
    now = datetime.now(UTC)
    rows = [
        feature_row(ids[0], now - timedelta(minutes=5), values=measurements(5.1, "north")),
        feature_row(ids[1], now - timedelta(minutes=4), values=measurements(6.2, "south")),
        # A later value of the first flower wins.
        feature_row(ids[0], now - timedelta(minutes=1), values=measurements(5.4, "east")),
    ]
    bootstrap = sqlite_server.settings.kafka_bootstrap_servers
    await produce(bootstrap, rows[:2])
    await produce(bootstrap, rows[2:], content_type=JSON)  # both wire formats are accepted

    async def arrived() -> dict[str, list[object]] | None:
        values = await online_values(sqlite_server.url, ids, FEATURES)
        return values if values["sepal_length"] == [5.4, 6.2, None] else None

    values = await eventually(arrived, timeout=10)
    assert values["site"] == ["east", "south", None]


async def test_bad_rows_go_to_the_dlq_with_the_reason_and_good_rows_of_the_batch_are_kept(
    sqlite_server: RunningServer,
) -> None:
    good_id, bad_id, other_id = new_flower_ids(3)
    now = datetime.now(UTC)
    rows = [
        feature_row(bad_id, now, push_source="no_such_push", values=measurements(1.0)),
        feature_row(good_id, now, values=measurements(4.9)),
        feature_row(
            bad_id, now, values={**measurements(2.0), "sepal_length": Value(string_value="long")}
        ),
        feature_row(None, now, values=measurements(3.0)),
        feature_row(
            other_id, now, values={**measurements(5.0), "colour": Value(string_value="red")}
        ),
    ]
    bootstrap = sqlite_server.settings.kafka_bootstrap_servers
    event_ids = await produce(bootstrap, rows)

    async def good_row_arrived() -> bool:
        values = await online_values(sqlite_server.url, [good_id, bad_id, other_id], FEATURES)
        return values["sepal_length"] == [4.9, None, None]

    await eventually(good_row_arrived, timeout=10)
    bad_ids = {event_ids[0], event_ids[2], event_ids[3], event_ids[4]}
    dead = await read_records(
        bootstrap,
        dlq_topic("features.ingest"),
        lambda r: dict(r.headers).get("ce_id", b"").decode() in bad_ids,
        expected=4,
    )
    reasons = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)["dlq.error"].decode() for r in dead
    }
    assert reasons.keys() == bad_ids
    assert "unknown push source 'no_such_push'" in reasons[event_ids[0]]
    assert "column 'sepal_length' expects float, got string" in reasons[event_ids[2]]
    assert "entity column 'flower_id' is missing" in reasons[event_ids[3]]
    assert "unknown column(s) 'colour'" in reasons[event_ids[4]]
    for record in dead:
        headers = dict(record.headers)
        assert headers["dlq.original.topic"] == b"features.ingest"
        assert headers["dlq.error.type"].endswith(b"RowRejected")


async def test_an_undecodable_record_is_dead_lettered_and_the_agent_keeps_going(
    sqlite_server: RunningServer,
) -> None:
    from aiokafka import AIOKafkaProducer

    bootstrap = sqlite_server.settings.kafka_bootstrap_servers
    marker = f"garbage-{new_flower_ids(1)[0]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        record = KafkaRecord(
            "features.ingest",
            b"k",
            b"\xff\x00 not protobuf",
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", marker.encode()),
                ("ce_source", b"/test"),
                ("ce_type", b"driftloop.features.row.pushed"),
                ("content-type", b"application/protobuf"),
            ],
        )
        await producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()
    dead = await read_records(
        bootstrap,
        dlq_topic("features.ingest"),
        lambda r: dict(r.headers).get("ce_id") == marker.encode(),
        expected=1,
    )
    assert b"UndecodablePayload" in dict(dead[0].headers)["dlq.error"]
    # ... and a good row after it still arrives.
    (flower,) = new_flower_ids(1)
    await produce(bootstrap, [feature_row(flower, datetime.now(UTC), values=measurements(7.7))])

    async def arrived() -> bool:
        values = await online_values(sqlite_server.url, [flower], FEATURES)
        return values["sepal_length"] == [7.7]

    await eventually(arrived, timeout=10)


async def _quiet(committed: Any, value: int) -> bool:
    await asyncio.sleep(0.5)
    return bool(await committed() == value)


async def test_a_batch_is_committed_only_once_written_while_the_next_is_read(
    sqlite_server: RunningServer,
) -> None:
    """The batch consumer reads the next batch while one is written (bus engine), but
    commits a batch's offsets only after its rows are in the store."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    gateway = sqlite_server.app.state.gateway
    entered, release = threading.Event(), threading.Event()
    original = gateway.write_online_rows

    def slow_store(push_source: str, rows: Any) -> int:
        entered.set()
        release.wait(timeout=30)
        return int(original(push_source, rows))

    bootstrap = sqlite_server.settings.kafka_bootstrap_servers
    checker = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=sqlite_server.settings.ingest_group
    )
    await checker.start()

    async def committed() -> int:
        partitions = checker.partitions_for_topic("features.ingest") or set()
        offsets = [
            await checker.committed(TopicPartition("features.ingest", p)) for p in partitions
        ]
        return sum(offset or 0 for offset in offsets)

    first, second = new_flower_ids(2)
    gateway.write_online_rows = slow_store
    try:
        await checker.topics()  # the topic's partitions
        before = await committed()
        for _ in range(40):  # earlier tests' last commits may still be landing (<= ~30 s)
            settled = await committed()
            if settled == before and await _quiet(committed, before):
                break
            before = settled
        else:
            pytest.fail("the ingest group's committed offsets never settled")
        await produce(bootstrap, [feature_row(first, datetime.now(UTC), values=measurements(1.1))])
        assert await asyncio.to_thread(entered.wait, 15), "the row never reached the store"
        await produce(bootstrap, [feature_row(second, datetime.now(UTC), values=measurements(2.2))])
        await asyncio.sleep(1.0)  # the second row is read meanwhile
        assert await committed() == before, "a batch was committed before it was written"
    finally:
        release.set()
        gateway.write_online_rows = original

    async def both_written() -> bool:
        values = await online_values(sqlite_server.url, [first, second], FEATURES)
        return values["sepal_length"] == [1.1, 2.2]

    await eventually(both_written, timeout=15)

    async def both_committed() -> bool:
        return await committed() == before + 2

    try:
        await eventually(both_committed, timeout=15)
    finally:
        await checker.stop()


async def test_ingested_watermarks_name_the_push_source_rows_and_latest_event_time(
    sqlite_server: RunningServer,
) -> None:
    ids = new_flower_ids(3)
    base = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(minutes=ids[0] % 1000)
    times = [base, base + timedelta(minutes=7), base + timedelta(minutes=3)]
    rows = [feature_row(i, t, values=measurements(5.0)) for i, t in zip(ids, times, strict=True)]
    bootstrap = sqlite_server.settings.kafka_bootstrap_servers
    await produce(bootstrap, rows)

    def is_ours(record: object) -> bool:
        event = event_of(record)
        return (
            event is not None
            and isinstance(event.data, features.FeaturesIngested)
            and event.data.max_event_time.ToDatetime(tzinfo=UTC) == times[1]
        )

    found = await read_records(bootstrap, "features.events", is_ours, expected=1)
    assert found, "no features.ingested watermark with the rows' latest event time"
    event = event_of(found[0])
    assert event is not None
    data = event.data
    assert event.type == "driftloop.features.ingested"
    assert found[0].key == b"iris_push"
    assert data.push_source == "iris_push"
    assert list(data.feature_views) == ["iris_features"]
    assert data.rows_written >= 1
    assert data.min_event_time.ToDatetime(tzinfo=UTC) <= times[0]
    assert data.online_store_written
    assert data.offline_store_written


@pytest.fixture(scope="module")
def faust_server(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The service with the faust-streaming agent as its ingestion consumer."""
    server = RunningServer(
        features_settings(
            home=tmp_path_factory.mktemp("features-faust"),
            bootstrap_servers=broker.bootstrap_servers,
            stream_engine="faust",
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_faust_agent_ingests_good_rows_and_dead_letters_bad_ones(
    faust_server: RunningServer,
) -> None:
    good, bad = new_flower_ids(2)
    now = datetime.now(UTC)
    rows = [
        feature_row(bad, now, values={**measurements(2.0), "site": Value(int64_value=3)}),
        feature_row(good, now, values=measurements(3.3, "faust")),
    ]
    bootstrap = faust_server.settings.kafka_bootstrap_servers
    event_ids = await produce(bootstrap, rows)

    async def arrived() -> bool:
        values = await online_values(faust_server.url, [good, bad], FEATURES)
        return values["site"] == ["faust", None]

    await eventually(arrived, timeout=10)
    dead = await read_records(
        bootstrap,
        dlq_topic("features.ingest"),
        lambda r: dict(r.headers).get("ce_id") == event_ids[0].encode(),
        expected=1,
    )
    assert b"column 'site' expects string, got int" in dict(dead[0].headers)["dlq.error"]


def test_both_engines_dispatch_through_the_service_handlers(
    sqlite_server: RunningServer, faust_server: RunningServer
) -> None:
    bus, agent = sqlite_server.app.state.agent, faust_server.app.state.agent
    assert isinstance(bus, BusIngest)
    assert isinstance(agent, FaustIngest)
    for engine in (bus, agent):
        assert engine.batches.count >= 1, "the tests before this one ingested batches"
        assert set(engine.batches.dispatcher.table) == {"driftloop.features.row.pushed"}
