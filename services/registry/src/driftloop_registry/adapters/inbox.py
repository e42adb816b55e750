"""The lineage consumer's inbox: the bus's claim, under the consumer group's name."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.inbox import claim
from driftloop_events.envelope import CloudEvent


class Inbox:
    """Claims events for one consumer in the caller's transaction.

    Args:
        consumer: Name of the consumer in the inbox (the consumer group).
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def claim(self, session: AsyncSession, event: CloudEvent[Any]) -> bool:
        """Record that the consumer handles ``event``; False if it already did."""
        return await claim(session, consumer=self.consumer, event=event)
