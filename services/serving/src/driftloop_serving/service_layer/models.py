"""Keeping the served models: loaded by alias, swapped atomically when the alias moves.

Each (model, alias) slot holds one :class:`ServedModel`. A new version is
downloaded and loaded in the background; only when it loaded does the slot
point to it, in one assignment, so a request that already took the old model
finishes on it and the next one gets the new. A version that fails to load is
never swapped in: the old one keeps answering, and the failure is logged,
counted and shown by ``/readyz``.

The alias events (``entrypoints/consumers.py``) come here: :meth:`ModelManager.alias_set`
loads the version an alias now names, :meth:`ModelManager.alias_deleted` stops a
challenger's traffic. A periodic reconcile catches a missed event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable, Sequence

import anyio
from prometheus_client import Counter, Gauge, Histogram

from driftloop_kit import tracing
from driftloop_serving.domain.models import (
    ModelLoadError,
    NotRegisteredYet,
    RegistryError,
    ServedModel,
    Slot,
    VersionInfo,
)
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.ports import ModelLoaderPort, RegistryPort
from driftloop_serving.settings import ServingSettings

log = logging.getLogger(__name__)

MODEL_VERSION = Gauge(
    "driftloop_serving_model_version", "Version served per model and alias.", ["model", "alias"]
)
LOAD_FAILURES = Counter(
    "driftloop_serving_model_load_failures_total",
    "Model versions that could not be loaded (the previous one kept serving).",
    ["model", "alias"],
)
SWAPS = Counter("driftloop_serving_model_swaps_total", "Versions swapped in.", ["model", "alias"])
LOAD_SECONDS = Histogram(
    "driftloop_serving_model_load_seconds",
    "Time to download and load one model version (before it is swapped in).",
    ["model", "alias"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def served_slots(settings: ServingSettings) -> list[Slot]:
    """The ``(model, alias)`` slots the settings declare: every champion, and a
    challenger with a policy."""
    return Catalog(settings).wanted()


class ModelManager:
    """Loads, holds and swaps the served versions.

    Args:
        registry: Where versions and their files come from.
        loader: Loads a downloaded version (in a worker thread).
        slots: The ``(model, alias)`` pairs to serve at start (more come and go with
            :meth:`want` and :meth:`unwant`).
        reconcile_interval: Seconds between checks of every alias against the registry.
        champion_alias: The alias whose version keeps serving when the alias is deleted.
    """

    def __init__(
        self,
        registry: RegistryPort,
        loader: ModelLoaderPort,
        slots: Iterable[Slot],
        *,
        reconcile_interval: float,
        champion_alias: str = "champion",
    ) -> None:
        self.champion_alias = champion_alias
        self.registry = registry
        self.loader = loader
        self.wanted: list[Slot] = list(dict.fromkeys(slots))
        self.reconcile_interval = reconcile_interval
        self.served: dict[Slot, ServedModel] = {}
        self.errors: dict[Slot, str] = {}
        self._locks: dict[Slot, asyncio.Lock] = {slot: asyncio.Lock() for slot in self.wanted}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconciler: asyncio.Task[None] | None = None

    def get(self, name: str, alias: str) -> ServedModel | None:
        """The model serving ``alias`` now, if one is loaded."""
        return self.served.get((name, alias))

    async def start(self) -> None:
        """Try every slot once (failures are reported, not raised) and start reconciling."""
        await asyncio.gather(*(self.refresh(*slot) for slot in self.wanted))
        self._reconciler = asyncio.create_task(self._reconcile_forever())

    async def stop(self) -> None:
        """Stop reconciling and any load in progress."""
        tasks = [*self._tasks, *([self._reconciler] if self._reconciler else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def want(self, slots: Sequence[Slot]) -> None:
        """Serve these slots too (a model's document declared them): each is loaded in
        the background and reconciled from then on; a slot already served is refreshed."""
        for slot in slots:
            if slot not in self._locks:
                self.wanted.append(slot)
                self._locks[slot] = asyncio.Lock()
            self.schedule(*slot)

    def unwant(self, slots: Sequence[Slot]) -> None:
        """Stop serving these slots (a model's document no longer declares them)."""
        for slot in slots:
            if slot in self.wanted:
                self.wanted.remove(slot)
            self.served.pop(slot, None)
            self.errors.pop(slot, None)

    def schedule(self, name: str, alias: str, version: int | None = None) -> None:
        """Load ``version`` (or whatever the alias names) for a slot, in the background."""
        if (name, alias) not in self.wanted:
            return
        task = asyncio.create_task(self.refresh(name, alias, version))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(self, name: str, alias: str, version: int | None = None) -> None:
        """Bring one slot to ``version`` (default: the alias's version in the registry),
        in a span that continues the trace of the alias move, when tracing is on."""
        with tracing.span(
            "serving.swap",
            attributes={
                "driftloop.model": name,
                "driftloop.alias": alias,
                "driftloop.version": version,
            },
        ):
            await self._refresh(name, alias, version)

    async def _refresh(self, name: str, alias: str, version: int | None) -> None:
        slot = (name, alias)
        async with self._locks[slot]:
            try:
                info = await (
                    self.registry.version(name, version)
                    if version is not None
                    else self.registry.by_alias(name, alias)
                )
                current = self.served.get(slot)
                if current is not None and current.version == info.version:
                    self.errors.pop(slot, None)
                    return
                version = info.version  # a failure to load names the version
                model = await self._load(info, alias)
            except NotRegisteredYet as error:
                if slot in self.served:
                    self._failed(slot, version, str(error))
                else:
                    self._waiting(slot, str(error))
                return
            except (RegistryError, ModelLoadError) as error:
                self._failed(slot, version, str(error))
                return
            if slot not in self.wanted:
                return  # let go while it loaded
            self.served[slot] = model  # the swap: one assignment
            self.errors.pop(slot, None)
            MODEL_VERSION.labels(name, alias).set(model.version)
            SWAPS.labels(name, alias).inc()
            log.info(
                "serving %s@%s version %d",
                name,
                alias,
                model.version,
                extra={"model": name, "alias": alias, "version": model.version},
            )

    async def _load(self, info: VersionInfo, alias: str) -> ServedModel:
        with LOAD_SECONDS.labels(info.name, alias).time():
            folder = await self.registry.download(info)
            predictor = await anyio.to_thread.run_sync(
                functools.partial(self.loader, folder, model=info.name)
            )
        return ServedModel(
            name=info.name,
            version=info.version,
            run_id=info.run_id,
            alias=alias,
            predictor=predictor,
        )

    def _failed(self, slot: Slot, version: int | None, reason: str) -> None:
        name, alias = slot
        which = f"version {version}" if version is not None else f"@{alias}"
        current = self.served.get(slot)
        keeping = f"; still serving version {current.version}" if current else ""
        self.errors[slot] = f"{which}: {reason}{keeping}"
        LOAD_FAILURES.labels(name, alias).inc()
        log.error("cannot load %s %s: %s%s", name, which, reason, keeping)

    def _waiting(self, slot: Slot, reason: str) -> None:
        """A declared model has no version (or alias) yet: said once, not an error."""
        name, alias = slot
        message = f"@{alias}: waiting for the first version ({reason})"
        if self.errors.get(slot) != message:
            log.info(
                "%s@%s has no version yet; serving it once one is registered",
                name,
                alias,
                extra={"model": name, "alias": alias},
            )
        self.errors[slot] = message

    def remove(self, name: str, alias: str) -> None:
        """Stop serving a slot (its alias was deleted)."""
        self.served.pop((name, alias), None)

    def alias_set(self, name: str, alias: str, version: int) -> None:
        """An alias moved: load the version it names (in the background; the old one serves)."""
        self.schedule(name, alias, version)

    def alias_deleted(self, name: str, alias: str) -> None:
        """An alias was deleted: a challenger stops its traffic; a champion keeps serving."""
        slot = (name, alias)
        if slot in self.wanted and alias != self.champion_alias:
            self.remove(*slot)
        elif slot in self.wanted:
            log.warning("alias %s@%s deleted; still serving what was loaded", *slot)

    async def reconcile(self) -> None:
        """Check every slot against the registry once (a fallback for missed events)."""
        for slot in list(self.wanted):
            await self.refresh(*slot)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval)
            try:
                await self.reconcile()
            except Exception:  # a bug here must not stop serving
                log.exception("reconcile failed")
