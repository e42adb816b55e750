"""The lineage consumer: monitor alerts and training jobs go into the lineage log.

Each event is claimed in the inbox in the transaction that writes its log row, so
a redelivered event adds nothing. An event the log cannot take (no model name, no
job id) fails its handler and, once retried, goes to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.consumer import EventKey, Handler
from driftloop_bus.inbox import idempotent
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database
from driftloop_registry.adapters import lineage_log
from driftloop_registry.domain.lineage_log import CONSUMED, log_entry


class LineageHandlers:
    """Writes the events of other services about models into the lineage log.

    Args:
        database: The registry's database (log and inbox).
        consumer: Name of the consumer in the inbox (the consumer group).
    """

    def __init__(self, *, database: Database, consumer: str) -> None:
        self.database = database
        self.consumer = consumer

    def table(self) -> Mapping[EventKey, Sequence[Handler]]:
        """The dispatch table of the lineage consumer."""
        handler = idempotent(self.database, self.consumer, self.record)
        return {message: [handler] for message in CONSUMED}

    async def record(self, event: CloudEvent[Any], session: AsyncSession) -> None:
        """Add ``event`` to the log, in the transaction of its inbox claim."""
        await lineage_log.record(session, log_entry(event))
