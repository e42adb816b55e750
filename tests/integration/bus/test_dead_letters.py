"""A poison message lands in ``<topic>.dlq`` with the error, and the consumer moves on."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import create_engine, text

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.deadletter import Delivered, original_record
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import CloudEvent, KafkaRecord, from_record, to_record
from driftloop_events.topics import TopicSpec, dlq_topic
from driftloop_kit.retry import Backoff

from .helpers import eventually, read_topic, undecodable_alias_set

pytestmark = pytest.mark.integration


async def _topic_and_publisher(broker: EmbeddedBroker, name: str) -> tuple[str, Publisher]:
    """A fresh one-partition topic and a started publisher."""
    topic = f"test.{name}.{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    return topic, publisher


def _runner(
    broker: EmbeddedBroker,
    publisher: Publisher,
    topic: str,
    handler: Callable[[CloudEvent[registry.AliasSet]], Awaitable[None]],
) -> ConsumerRunner:
    """A consumer of ``topic`` in a group of its own, three quick tries per event."""
    return ConsumerRunner(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"dlq-test-{uuid.uuid4().hex[:8]}",
        handlers={registry.AliasSet: [handler]},
        publisher=publisher,
        topics=[topic],
        retry=Backoff(attempts=3, initial=0.01),
    )


def _alias_set(topic: str, version: int) -> KafkaRecord:
    return to_record(
        CloudEvent.new(registry.AliasSet(name="m", alias="champion", version=version)),
        topic=topic,
    )


async def test_poison_messages_go_to_the_dlq_and_the_next_good_message_is_handled(
    broker: EmbeddedBroker,
) -> None:
    topic, publisher = await _topic_and_publisher(broker, "poison")
    handled: list[int] = []
    attempts: dict[int, int] = {}

    async def on_alias_set(event: CloudEvent[registry.AliasSet]) -> None:
        attempts[event.data.version] = attempts.get(event.data.version, 0) + 1
        if event.data.version == 13:
            raise ValueError("version 13 is unlucky")
        handled.append(event.data.version)

    runner = _runner(broker, publisher, topic, on_alias_set)

    undecodable = undecodable_alias_set(topic, b"m")
    no_type = KafkaRecord(topic=topic, key=b"m", value=b"{}", headers=[("ce_id", b"bad-2")])
    good = [_alias_set(topic, version) for version in (1, 2, 13, 3)]
    for record in (good[0], undecodable, good[1], no_type, good[2], good[3]):
        await (await publisher.send_record(record))

    await runner.start()
    try:
        await eventually(lambda: _at_least(handled, 3), timeout=60)
        dead = await read_topic(broker.bootstrap_servers, dlq_topic(topic), expected=3)
    finally:
        await runner.stop()
        await publisher.stop()

    assert handled == [1, 2, 3]
    assert attempts[13] == 3, "the failing handler is retried before dead-lettering"
    assert len(dead) == 3
    headers = [dict(record.headers) for record in dead]
    assert [h["ce_id"] for h in headers] == [b"bad-1", b"bad-2", headers[2]["ce_id"]]
    assert b"UndecodablePayload" in headers[0]["dlq.error"]
    assert b"MissingHeader" in headers[1]["dlq.error"]
    assert b"version 13 is unlucky" in headers[2]["dlq.error"]
    assert headers[2]["dlq.attempts"] == b"3"
    assert {h["dlq.original.topic"] for h in headers} == {topic.encode()}
    assert [int(h["dlq.original.offset"]) for h in headers] == [1, 3, 4]
    # The original message can be recovered from the dead letter for a replay.
    replay = original_record(_delivered(dead[2]))
    assert from_record(replay.value, replay.headers).data.version == 13
    assert replay.topic == topic


def _delivered(record: ConsumerRecord[bytes, bytes]) -> Delivered:
    from driftloop_bus.consumer import delivered

    return delivered(record)


async def _at_least(items: list[int], count: int) -> bool:
    return len(items) >= count


async def test_an_event_whose_database_is_away_waits_for_it_and_is_not_dead_lettered(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # The handler writes to a SQLite file another writer holds longer than the handler's
    # retries last: a dependency away, not a bad event.
    database = tmp_path / "held.db"
    with sqlite3.connect(database) as setup:
        setup.execute("CREATE TABLE seen (version INTEGER)")
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0.05})
    topic, publisher = await _topic_and_publisher(broker, "outage")
    attempts: list[int] = []

    async def on_alias_set(event: CloudEvent[registry.AliasSet]) -> None:
        attempts.append(event.data.version)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO seen VALUES (:v)"), {"v": event.data.version})

    runner = _runner(broker, publisher, topic, on_alias_set)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for version in (1, 2):
            await (await publisher.send_record(_alias_set(topic, version)))
        await runner.start()
        await eventually(lambda: _at_least(attempts, 5), timeout=60)
        holder.execute("COMMIT")

        def written() -> list[int]:
            with engine.connect() as connection:
                return [row[0] for row in connection.execute(text("SELECT version FROM seen"))]

        async def both_written() -> bool:
            return written() == [1, 2]

        await eventually(both_written, timeout=60)
    finally:
        holder.close()
        await runner.stop()
        await publisher.stop()
        engine.dispose()

    assert attempts.count(1) >= 5, "the event was tried past the handler's three attempts"
    dead = await read_topic(broker.bootstrap_servers, dlq_topic(topic), expected=1, timeout=5)
    assert dead == []
