"""faust-streaming agents use the bus helpers against the real embedded broker.

An agent of an app made by :func:`driftloop_bus.streams.faust_app` decodes
CloudEvents, dead-letters poison messages and keeps going, counts events in a
faust Table that is recovered from its changelog after a restart, and an
inbox-protected handler gives a re-published event no second effect.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus import tables
from driftloop_bus.consumer import Dispatcher
from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.inbox import idempotent
from driftloop_bus.publisher import Publisher
from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import JSON, PROTOBUF, CloudEvent, KafkaRecord, to_record
from driftloop_events.topics import TopicSpec, dlq_spec, dlq_topic
from driftloop_kit.db import Database
from driftloop_kit.retry import Backoff

from .helpers import create_tables, effects, eventually, read_topic, undecodable_alias_set

pytestmark = pytest.mark.integration


def _alias(name: str, version: int) -> CloudEvent[registry.AliasSet]:
    return CloudEvent.new(registry.AliasSet(name=name, alias="champion", version=version))


@asynccontextmanager
async def _running(app: faust.App) -> AsyncIterator[faust.App]:
    """Start ``app`` in this event loop; ``start`` returns once partitions are assigned."""
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _new_topic(broker: EmbeddedBroker) -> str:
    topic = f"test.faust.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(topic, 1, 3_600_000, "test")
    await ensure_topics(broker.bootstrap_servers, [spec, dlq_spec(topic)])
    return topic


async def _committed(bootstrap_servers: str, group: str, topic: str) -> int | None:
    partition = TopicPartition(topic, 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        # Name the partitions: tansu answers an OffsetFetch for "all of the group's
        # partitions" (topics=NULL) with a response aiokafka cannot decode.
        offsets = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    found = offsets.get(partition)
    return None if found is None else int(found.offset)


async def test_a_faust_agent_handles_cloudevents_in_order_and_dead_letters_poison_messages(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = await _new_topic(broker)
    app_id = f"faust-poison-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    handled: list[tuple[int, str]] = []
    attempts: dict[int, int] = {}

    async def on_alias_set(event: CloudEvent[registry.AliasSet]) -> None:
        attempts[event.data.version] = attempts.get(event.data.version, 0) + 1
        if event.data.version == 13:
            raise ValueError("version 13 is unlucky")
        handled.append((event.data.version, event.id))

    dispatcher = Dispatcher(
        handlers={registry.AliasSet: [on_alias_set]},
        dead_letters=DeadLetters(publisher, group=app_id),
        retry=Backoff(attempts=2, initial=0.01),
    )
    app = faust_app(app_id, bootstrap_servers=broker.bootstrap_servers, data_dir=tmp_path)

    @app.agent(app.topic(topic))
    async def alias_events(stream: Any) -> None:
        async for event in stream.events():
            await dispatcher.handle(from_faust(event.message))

    good = [_alias("iris", version) for version in (1, 2, 3, 4)]
    unlucky = _alias("iris", 13)
    undecodable = undecodable_alias_set(topic, b"iris")

    async def send(record: KafkaRecord) -> None:
        await (await publisher.send_record(record))

    try:
        # A backlog from before the agent started, in both wire formats ...
        await send(to_record(good[0], content_type=PROTOBUF, topic=topic))
        await send(to_record(good[1], content_type=JSON, topic=topic))
        await send(undecodable)
        async with _running(app):
            # ... and live messages after it joined the group.
            await send(to_record(unlucky, topic=topic))
            await send(to_record(good[2], content_type=JSON, topic=topic))
            await send(to_record(good[3], content_type=PROTOBUF, topic=topic))
            await eventually(lambda: _at_least(handled, 4), timeout=20)
            dead = await read_topic(
                broker.bootstrap_servers, dlq_topic(topic), expected=2, timeout=10
            )
            # faust commits past every message it moved on from, the poison ones included.
            await eventually(
                lambda: _equals(_committed(broker.bootstrap_servers, app_id, topic), 6),
                timeout=10,
            )
    finally:
        await publisher.stop()

    assert handled == [(event.data.version, event.id) for event in good]
    assert attempts[13] == 2, "the failing handler is retried before dead-lettering"
    assert len(dead) == 2
    headers = [dict(record.headers) for record in dead]
    assert [h["ce_id"] for h in headers] == [b"bad-1", unlucky.id.encode()]
    assert b"UndecodablePayload" in headers[0]["dlq.error"]
    assert headers[0]["dlq.attempts"] == b"0"
    assert b"version 13 is unlucky" in headers[1]["dlq.error"]
    assert headers[1]["dlq.attempts"] == b"2"
    assert {h["dlq.consumer.group"] for h in headers} == {app_id.encode()}
    assert {h["dlq.original.topic"] for h in headers} == {topic.encode()}
    assert [int(h["dlq.original.offset"]) for h in headers] == [2, 3]
    assert dead[0].value == undecodable.value, "the dead letter keeps the original bytes"


async def test_a_faust_table_survives_a_restart_and_the_inbox_ignores_republished_events(
    broker: EmbeddedBroker, sqlite_url: str, tmp_path: Path
) -> None:
    topic = await _new_topic(broker)
    app_id = f"faust-table-{uuid.uuid4().hex[:8]}"
    database = Database(sqlite_url)
    await create_tables(database)
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    dispatcher = Dispatcher(handlers={}, dead_letters=DeadLetters(publisher, group=app_id))

    async def record_effect(event: CloudEvent[registry.AliasSet], session: AsyncSession) -> None:
        detail = f"{event.data.name}:{event.data.version}"
        await session.execute(effects.insert().values(event_id=event.id, detail=detail))

    on_alias_set = idempotent(database, app_id, record_effect)

    def deliveries_app(data_dir: Path) -> tuple[faust.App, Any]:
        """The app as a service would build it; a restart builds a fresh one."""
        app = faust_app(
            app_id,
            bootstrap_servers=broker.bootstrap_servers,
            data_dir=data_dir,
            # The smallest session Kafka accepts, to keep the restart quick: aiokafka
            # sends no LeaveGroup for tansu's first generation (0), so the new instance
            # waits for the stopped one's session to expire.
            broker_session_timeout=6.0,
            broker_heartbeat_interval=1.0,
        )
        # Keyed by the Kafka key (the model name), so the table is co-partitioned with the topic.
        deliveries = app.Table("deliveries", default=int, partitions=1)

        @app.agent(app.topic(topic))
        async def count_deliveries(stream: Any) -> None:
            async for message in stream.events():
                event = await dispatcher.decode(from_faust(message.message))
                if event is None:
                    continue
                await on_alias_set(event)
                deliveries[event.key] += 1  # after the handler: a count means it is done

        return app, deliveries

    a1, b1, a2, b2 = _alias("a", 1), _alias("b", 1), _alias("a", 2), _alias("b", 2)

    async def publish(event: CloudEvent[Any], content_type: str) -> None:
        await publisher.publish_and_wait(event, content_type=content_type, topic=topic)

    try:
        await publish(a1, PROTOBUF)
        await publish(b1, JSON)
        await publish(a2, PROTOBUF)
        app, deliveries = deliveries_app(tmp_path / "first")
        async with _running(app):
            await eventually(lambda: _counts_are(deliveries, {"a": 2, "b": 1}), timeout=20)
            # The producer retries, or the outbox relay runs twice: same event, same id.
            await publish(a1, JSON)
            await eventually(lambda: _counts_are(deliveries, {"a": 3, "b": 1}), timeout=20)
            assert await _effects(database) == ["a:1", "b:1", "a:2"]
        assert await _committed(broker.bootstrap_servers, app_id, topic) == 4

        # A fresh instance (empty memory store) resumes after the committed offset, so
        # nothing is left to process when it starts: its counts can only come from the
        # table's changelog, which it has read back before start() returns.
        app, deliveries = deliveries_app(tmp_path / "second")
        async with _running(app):
            assert _counts(deliveries) == {"a": 3, "b": 1}
            await publish(b1, PROTOBUF)
            await publish(b2, JSON)
            await eventually(lambda: _counts_are(deliveries, {"a": 3, "b": 3}), timeout=20)
        assert await _effects(database) == ["a:1", "b:1", "a:2", "b:2"]
        async with database.session() as session:
            claimed = await session.scalar(select(func.count()).select_from(tables.inbox))
        assert claimed == 4
    finally:
        await publisher.stop()
        await database.dispose()


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


def _counts(table: Any) -> dict[str, int]:
    return {key: table.get(key, 0) for key in ("a", "b")}


async def _counts_are(table: Any, expected: dict[str, int]) -> bool:
    return _counts(table) == expected


async def _effects(database: Database) -> list[str]:
    async with database.session() as session:
        rows = await session.scalars(select(effects.c.detail).order_by(effects.c.id))
        return list(rows)
