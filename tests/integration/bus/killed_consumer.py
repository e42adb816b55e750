"""A consumer process that dies right after its first handler commits (run as a script).

Usage: python killed_consumer.py BOOTSTRAP GROUP TOPIC DATABASE_URL
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.inbox import idempotent
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database

sys.path.insert(0, os.path.dirname(__file__))
from helpers import deliveries, effects


async def main(bootstrap: str, group: str, topic: str, url: str) -> None:
    database = Database(url)

    async def apply(event: CloudEvent[Any], session: AsyncSession) -> None:
        await session.execute(insert(effects).values(event_id=event.id, detail="applied"))

    effect = idempotent(database, "redelivery-test", apply)

    async def handle(event: CloudEvent[Any]) -> None:
        async with database.session() as session:
            await session.execute(insert(deliveries).values(event_id=event.id))
        await effect(event)
        if os.environ.get("DIE_AFTER_HANDLING") == "1":
            # The effect is committed, the Kafka offset is not.
            os.kill(os.getpid(), signal.SIGKILL)

    runner = ConsumerRunner(
        bootstrap_servers=bootstrap,
        group_id=group,
        handlers={"driftloop.registry.alias.set": [handle]},
        publisher=Publisher(bootstrap),
        topics=[topic],
        # The dead first process leaves the group sooner, so the test waits less.
        consumer_options={"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000},
    )
    await runner.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
