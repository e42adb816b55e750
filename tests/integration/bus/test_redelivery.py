"""A consumer killed after handling, before committing, sees the event again; no second effect."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TopicSpec
from driftloop_kit.db import Database

from .helpers import count_rows, create_tables, deliveries, effects, eventually

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("killed_consumer.py")


async def test_redelivered_event_after_a_crash_has_no_second_effect(
    broker: EmbeddedBroker, database_url: str
) -> None:
    database = Database(database_url)
    await create_tables(database)
    topic = f"test.redelivery.{uuid.uuid4().hex[:8]}"
    group = f"redelivery-{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    publisher = Publisher(broker.bootstrap_servers)
    await publisher.start()
    event = CloudEvent.new(registry.AliasSet(name="m", alias="champion", version=7))
    await publisher.publish_and_wait(event, topic=topic)
    await publisher.stop()

    args = [sys.executable, str(SCRIPT), broker.bootstrap_servers, group, topic, database_url]
    first = await asyncio.create_subprocess_exec(
        *args, env={**os.environ, "DIE_AFTER_HANDLING": "1"}, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(first.communicate(), timeout=120)
    assert first.returncode == -9, stderr.decode()[-2000:]
    assert await count_rows(database, effects) == 1
    assert await count_rows(database, deliveries) == 1

    second = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL)
    try:
        await eventually(lambda: _at_least(database, 2), timeout=90)
    finally:
        second.terminate()
        await asyncio.wait_for(second.wait(), timeout=30)

    async with database.session() as session:
        delivered_ids = (await session.execute(select(deliveries.c.event_id))).scalars().all()
    assert delivered_ids == [event.id, event.id], "the uncommitted event is delivered again"
    assert await count_rows(database, effects) == 1, "the inbox prevents a second effect"
    await database.dispose()


async def _at_least(database: Database, expected: int) -> bool:
    return await count_rows(database, deliveries) >= expected
