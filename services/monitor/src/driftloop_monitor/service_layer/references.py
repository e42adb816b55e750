"""Reference data of model versions: uploads, the new champion's sample, a cache."""

from __future__ import annotations

import asyncio
import logging

import pandas as pd  # type: ignore[import-untyped]

from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop_events.envelope import CloudEvent
from driftloop_kit.errors import InvalidInput
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.drift import ReferenceSet
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.domain.windows import VersionKey
from driftloop_monitor.service_layer.ports import MonitorStorePort, ReferenceSourcePort

__all__ = ["References"]

log = logging.getLogger(__name__)


class References:
    """Each version's reference data: stored, fetched on ``alias.set``, cached by digest.

    Args:
        store: Where reference data is kept.
        source: Where a new champion's sample comes from.
    """

    def __init__(self, *, store: MonitorStorePort, source: ReferenceSourcePort) -> None:
        self.store = store
        self.source = source
        self._cached: dict[VersionKey, ReferenceSet] = {}

    async def get(self, key: VersionKey) -> ReferenceSet | None:
        """The version's reference data, cached while its digest stays the same."""
        digest = await self.store.reference_digest(key.model, key.version)
        cached = self._cached.get(key)
        if digest is None:
            self._cached.pop(key, None)
            return None
        if cached is not None and cached.digest == digest:
            return cached
        loaded = await self.store.get_reference(key.model, key.version)
        if loaded is not None:
            self._cached[key] = loaded
        return loaded

    async def put(
        self, model: str, version: int, data: pd.DataFrame, *, source: str = "upload"
    ) -> ReferenceSet:
        """Create or replace a version's reference data (REST upload).

        Raises:
            InvalidInput: The data cannot be used as reference data.
        """
        policy = await self.store.get_policy(model) or MonitorPolicy()
        try:
            reference = await asyncio.to_thread(
                drift.make_reference, data, overrides=policy.column_types, source=source
            )
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        if not reference.column_types:
            raise InvalidInput("no column of the reference data can be tested for drift")
        await self.store.put_reference(model, version, reference)
        self._cached.pop(VersionKey(model, version), None)
        return reference

    async def on_alias_set(self, event: CloudEvent[registry_events.AliasSet]) -> None:
        """A version became champion: fetch its reference data unless it has some already.

        Idempotent by nature: a version that has reference data is left alone, so a
        redelivered event has no second effect (and no transaction is held during the fetch).
        """
        moved = event.data
        if moved.alias != "champion" or not moved.name or moved.version <= 0:
            return
        if await self.store.reference_digest(moved.name, moved.version) is not None:
            return
        fetched = await self.source.fetch(
            model=moved.name, version=moved.version, run_id=moved.run_id, source=moved.source
        )
        if fetched is None:
            log.info(
                "no reference data found for the new champion; upload it through the API",
                extra={"model": moved.name, "version": moved.version},
            )
            return
        data, location = fetched
        reference = await asyncio.to_thread(drift.make_reference, data, source=location)
        await self.store.put_reference(moved.name, moved.version, reference)
        log.info(
            "reference data loaded",
            extra={"model": moved.name, "version": moved.version, "source": location},
        )
