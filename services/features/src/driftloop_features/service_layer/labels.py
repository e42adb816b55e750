"""Labels in and out of the label store.

A label posted over REST is stored and published on ``labels`` in one transaction
(the outbox), so the monitor sees the labels the store holds. When the service's own
consumer reads that record back, storing it again changes nothing (the store's rule
makes a resent label one label).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from driftloop_events.envelope import CloudEvent
from driftloop_features.adapters.label_store import LabelStore
from driftloop_features.domain.labels import Label, label_event
from driftloop_features.service_layer.ports import OutboxPort, SessionsPort

__all__ = ["SOURCE", "Labels"]

#: The CloudEvents source of labels the features service publishes.
SOURCE = "/driftloop/features"


class Labels:
    """The label store's use cases."""

    def __init__(self, *, database: SessionsPort, outbox: OutboxPort) -> None:
        self.database = database
        self.outbox = outbox
        self.store = LabelStore()

    async def submit(self, labels: Sequence[Label]) -> None:
        """Store ``labels`` and publish them on ``labels``, in one transaction."""
        events = [CloudEvent.new(label_event(label), source=SOURCE) for label in labels]
        async with self.database.session() as session:
            await self.store.record(session, labels)
            await self.outbox.add(session, *events)

    async def record(self, labels: Sequence[Label]) -> None:
        """Store labels read from the ``labels`` topic (they are published already)."""
        async with self.database.session() as session:
            await self.store.record(session, labels)

    async def read(
        self,
        model_name: str,
        *,
        start: datetime | None,
        end: datetime | None,
        after_id: int,
        limit: int,
    ) -> list[tuple[int, Label]]:
        """One page of ``model_name``'s labels (see :meth:`LabelStore.read`)."""
        async with self.database.session() as session:
            return await self.store.read(
                session, model_name, start=start, end=end, after_id=after_id, limit=limit
            )
