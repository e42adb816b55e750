"""The worker: one queue of closed windows, decided one at a time, off the stream's path."""

from __future__ import annotations

import asyncio
import logging

from driftloop_bus.tasks import cancel_and_wait
from driftloop_kit.heap import freeze_heap
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.performance import PerformanceJob
from driftloop_monitor.domain.windows import ClosedWindow
from driftloop_monitor.service_layer.decisions import Decisions

__all__ = ["Worker"]

log = logging.getLogger(__name__)


async def _warm_up() -> None:
    """Import Evidently in a thread, then freeze the heap again: its modules and those
    it pulls in (pandas, scipy, plotly) are most of the process's objects, and every full
    collection would walk them while the stream runs (a fifth of its CPU, measured)."""
    await asyncio.to_thread(drift.warm_up)
    freeze_heap()


class Worker:
    """Decides closed windows in the order they closed, one at a time.

    Only the worker writes a version's state, so :class:`Decisions` reads it once and
    keeps it. A window that cannot be decided is logged and dropped.

    Args:
        decisions: The use cases that decide a window.
        queue_size: Windows waiting at most; a full queue slows the stream down.
    """

    def __init__(self, decisions: Decisions, *, queue_size: int = 32) -> None:
        self.decisions = decisions
        self._queue: asyncio.Queue[ClosedWindow | PerformanceJob] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0

    async def start(self) -> None:
        """Start the worker."""
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="monitor-worker")
            # Importing Evidently takes seconds: start it now, off the loop, without
            # holding the service's start-up back. The first decision waits for the
            # import if it is not done yet.
            self._warm_up = asyncio.create_task(_warm_up(), name="monitor-warm-up")

    async def stop(self) -> None:
        """Stop the worker; windows still open are lost (see the README of the service)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until every queued window has been decided (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._busy or not self._queue.empty():
                self._idle.clear()
                await self._idle.wait()

    async def enqueue(self, job: ClosedWindow | PerformanceJob) -> None:
        """Queue a closed window (waits while the queue is full)."""
        self._idle.clear()
        await self._queue.put(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                if isinstance(job, ClosedWindow):
                    await self.decisions.decide_window(job)
                else:
                    await self.decisions.decide_performance(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("window could not be decided; it is dropped")
                self.decisions.forget_states()  # read back what was stored
            finally:
                self._busy -= 1
                if self._queue.empty() and not self._busy:
                    self._idle.set()
