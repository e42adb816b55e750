"""Reference data of model versions: uploads, the new champion's sample, a cache."""

from __future__ import annotations

import asyncio
import logging
import time

import pandas as pd  # type: ignore[import-untyped]

from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop_events.envelope import CloudEvent
from driftloop_kit.errors import InvalidInput
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.columns import ColumnKinds
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
        kinds_ttl: Seconds the kinds of a version's columns (:meth:`value_kinds`, asked
            for every prediction) are used before the reference is looked at again.
    """

    def __init__(
        self, *, store: MonitorStorePort, source: ReferenceSourcePort, kinds_ttl: float = 5.0
    ) -> None:
        self.store = store
        self.source = source
        self.kinds_ttl = kinds_ttl
        self._cached: dict[VersionKey, ReferenceSet] = {}
        self._kinds: dict[VersionKey, tuple[float, ColumnKinds | None]] = {}

    async def value_kinds(self, key: VersionKey) -> ColumnKinds | None:
        """The kind of value each tested column of the version's reference holds (None
        without reference data), read at most every ``kinds_ttl`` seconds."""
        cached = self._kinds.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.kinds_ttl:
            return cached[1]
        reference = await self.get(key)
        kinds = None if reference is None else reference.value_kinds
        self._kinds[key] = (now, kinds)
        return kinds

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
        self._kinds.pop(VersionKey(model, version), None)
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
        policy = await self.store.get_policy(moved.name) or MonitorPolicy()
        reference = await asyncio.to_thread(
            drift.make_reference, data, overrides=policy.column_types, source=location
        )
        await self.store.put_reference(moved.name, moved.version, reference)
        self._kinds.pop(VersionKey(moved.name, moved.version), None)
        log.info(
            "reference data loaded",
            extra={"model": moved.name, "version": moved.version, "source": location},
        )
