"""Outbox: state changes made while the broker is down are all delivered, each once."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.inbox import idempotent
from driftloop_bus.outbox import Outbox, OutboxRelay
from driftloop_bus.publisher import Publisher
from driftloop_bus.tables import outbox as outbox_table
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_kit.db import Database
from driftloop_kit.retry import RECONNECT

from .helpers import changes, count_rows, create_tables, effects, eventually

pytestmark = pytest.mark.integration

CHANGES = 1_000


async def test_changes_committed_during_an_outage_arrive_once_after_the_broker_starts(
    database_url: str,
) -> None:
    database = Database(database_url)
    await create_tables(database)
    broker = EmbeddedBroker()  # not started: the broker is down
    publisher = Publisher(broker.bootstrap_servers, topics=[TOPICS["registry.models"]])
    outbox = Outbox()
    relay = OutboxRelay(
        database=database,
        publisher=publisher,
        outbox=outbox,
        service="test",
        backoff=RECONNECT.with_(maximum=0.5),
    )
    await relay.start()

    # 1,000 state changes, each with its event, in one transaction per change.
    for i in range(CHANGES):
        async with database.session() as session:
            await session.execute(insert(changes).values(id=i, name=f"model-{i % 7}"))
            await outbox.add(
                session,
                CloudEvent.new(
                    registry.AliasSet(name=f"model-{i % 7}", alias="champion", version=i)
                ),
            )
    assert await count_rows(database, changes) == CHANGES
    assert await count_rows(database, outbox_table) == CHANGES, "nothing can be published yet"

    async def apply(event: CloudEvent[registry.AliasSet], session: AsyncSession) -> None:
        await session.execute(
            insert(effects).values(event_id=event.id, detail=str(event.data.version))
        )

    consumer_publisher = Publisher(broker.bootstrap_servers)
    runner = ConsumerRunner(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"outbox-{uuid.uuid4().hex[:8]}",
        handlers={registry.AliasSet: [idempotent(database, "outbox-test", apply)]},
        publisher=consumer_publisher,
    )
    broker.start()
    try:
        await runner.start()
        await eventually(lambda: _reached(database, CHANGES), timeout=120)
        await eventually(lambda: _empty(database), timeout=30)
    finally:
        await runner.stop()
        await relay.stop()
        await publisher.stop()
        await consumer_publisher.stop()
        broker.stop()

    async with database.session() as session:
        versions = (await session.execute(select(effects.c.detail))).scalars().all()
    await database.dispose()
    assert sorted(int(v) for v in versions) == list(range(CHANGES)), (
        "each change arrives exactly once"
    )


async def _reached(database: Database, expected: int) -> bool:
    return await count_rows(database, effects) >= expected


async def _empty(database: Database) -> bool:
    return await count_rows(database, outbox_table) == 0


async def test_a_rolled_back_change_leaves_no_event(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await create_tables(database)
    outbox = Outbox()

    async def change_then_fail() -> None:
        async with database.session() as session:
            await session.execute(insert(changes).values(id=1, name="m"))
            await outbox.add(
                session, CloudEvent.new(registry.AliasSet(name="m", alias="a", version=1))
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await change_then_fail()
    assert await count_rows(database, changes) == 0
    assert await count_rows(database, outbox_table) == 0
    await database.dispose()
