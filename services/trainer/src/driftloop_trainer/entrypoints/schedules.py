"""The trainer's clock: every ``interval`` seconds, :meth:`Training.fire_schedules` and
:meth:`Training.retry_pending` (deferred triggers of open episodes whose wait is over) and
:meth:`Training.keep_leases` (this process's jobs held, other processes' orphans failed).

A periodic driver of the use cases, as the consumer is for events. A failed check is
logged and the next one runs on time (it is a clock, not a retry).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from driftloop_bus.tasks import cancel_and_wait
from driftloop_trainer.service_layer.training import Training

__all__ = ["ScheduleClock"]

log = logging.getLogger(__name__)


class ScheduleClock:
    """Checks the models' schedules every ``interval`` seconds (a resource of the app)."""

    def __init__(self, training: Training, interval: float) -> None:
        self.training = training
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trainer-clock")

    async def _run(self) -> None:
        since = self.training.clock()
        fired: dict[str, datetime] = {}
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.training.fire_schedules(
                    now=self.training.clock(), since=since, fired=fired
                )
            except Exception:
                log.exception("schedule check failed; next check in %s s", self.interval)
            try:
                await self.training.retry_pending()
            except Exception:
                log.exception("deferred triggers check failed; next in %s s", self.interval)
            try:
                await self.training.keep_leases()
            except Exception:
                log.exception("job leases check failed; next in %s s", self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
