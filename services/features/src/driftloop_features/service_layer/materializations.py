"""Materialization: loading feature views into the online store, recorded as events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any

from driftloop_features.domain.events import materialized_events
from driftloop_features.service_layer.ports import FeatureStorePort, OutboxPort, SessionsPort

__all__ = ["Materializations"]

log = logging.getLogger(__name__)


class Materializations:
    """Materializes feature views and records a ``features.materialized`` event per view.

    Args:
        gateway: The Feast store.
        database: Holds the outbox.
        outbox: The service's outbox.
    """

    def __init__(
        self, *, gateway: FeatureStorePort, database: SessionsPort, outbox: OutboxPort
    ) -> None:
        self.gateway = gateway
        self.database = database
        self.outbox = outbox
        self._background: set[asyncio.Task[Any]] = set()

    def in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a materialization after the request that asked for it has been answered."""
        task = asyncio.create_task(work)
        self._background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("background materialization failed", exc_info=finished.exception())

        task.add_done_callback(done)

    async def accepted(self, feature_views: list[str] | None) -> list[str]:
        """The views a materialization of ``feature_views`` (None: all) will load.

        Raises:
            NotFound: A named view does not exist (before anything is started).
        """
        return await asyncio.to_thread(self.gateway.materializable, feature_views)

    async def materialize(
        self, start: datetime, end: datetime, feature_views: list[str] | None
    ) -> list[str]:
        """Materialize ``[start, end)``; return the feature views materialized."""
        rows = await asyncio.to_thread(self.gateway.materialize, start, end, feature_views)
        await self._record({name: (start, count) for name, count in rows.items()}, end)
        return list(rows)

    async def materialize_incremental(
        self, end: datetime, feature_views: list[str] | None
    ) -> list[str]:
        """Materialize each view from where it last stopped up to ``end``."""
        done = await asyncio.to_thread(self.gateway.materialize_incremental, end, feature_views)
        await self._record(done, end)
        return list(done)

    async def _record(self, done: Mapping[str, tuple[datetime | None, int]], end: datetime) -> None:
        run_id = f"mat-{end:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
        events = materialized_events(done, end, run_id)
        if events:
            async with self.database.session() as session:
                await self.outbox.add(session, *events)
