"""Inbox: remember handled event ids so a redelivered event has no second effect.

The claim and the handler's effect share one transaction: if the handler fails,
the claim is rolled back with it and the event can be handled again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.tables import inbox
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database

log = logging.getLogger(__name__)

SessionHandler = Callable[[CloudEvent[Any], AsyncSession], Awaitable[None]]
"""A handler that makes its changes in the session it is given."""


async def claim(session: AsyncSession, *, consumer: str, event: CloudEvent[Any]) -> bool:
    """Record that ``consumer`` handles ``event``; False if it already did.

    Args:
        session: The transaction that will also hold the handler's effect.
        consumer: Who handles it (usually the consumer group); one event can be
            handled once by each consumer.
        event: The event.
    """
    connection = await session.connection()
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(inbox)
        .values(consumer=consumer, event_id=event.id, event_type=event.type)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )
    # RETURNING says whether the row went in; rowcount is not reliable across drivers.
    return (await session.execute(statement)).first() is not None


def idempotent(
    database: Database, consumer: str, handler: SessionHandler
) -> Callable[[CloudEvent[Any]], Awaitable[None]]:
    """Wrap ``handler`` so that each event id takes effect at most once for ``consumer``.

    The returned callable opens a transaction, claims the event in the inbox and,
    if it is new, runs ``handler`` in the same transaction.
    """

    async def run(event: CloudEvent[Any]) -> None:
        async with database.session() as session:
            if not await claim(session, consumer=consumer, event=event):
                log.info(
                    "duplicate event ignored",
                    extra={"consumer": consumer, "event_id": event.id, "type": event.type},
                )
                return
            await handler(event, session)

    run.__name__ = getattr(handler, "__name__", "handler")
    run.__qualname__ = getattr(handler, "__qualname__", "handler")
    return run
