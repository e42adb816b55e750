"""The stream state a consumed batch changed, written in one go before its offsets commit.

The use cases (:mod:`.predictions`, :mod:`.labels`) note here what they changed in memory
(rows added to windows, predictions that wait for their label, predictions joined with
it) and hand closed windows over through :meth:`StateJournal.defer`. The durable stream
engine (``entrypoints/stream.py``) sets :attr:`StateJournal.partition` before each record,
writes :meth:`StateJournal.take` in one transaction (a row per window and one per
partition of waiting predictions, each encoded once) with the batch's offsets, and only
then gives the deferred windows to the worker: a window is decided only once every row
of it is stored, and deleting its rows belongs to the transaction that stores its
decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from driftloop_monitor.domain.performance import PerformanceJob
from driftloop_monitor.domain.windows import ClosedWindow, RowChunk

__all__ = ["Changes", "StateJournal"]

Job = ClosedWindow | PerformanceJob


@dataclass
class Changes:
    """What one batch changed: the rows it added to each window (one chunk per window),
    the predictions that wait for their label, and those joined with it."""

    windows: dict[str, RowChunk] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    joined: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.windows or self.pending or self.joined)


class StateJournal:
    """Collects a batch's state changes and the windows it closed.

    Args:
        enqueue: Hands a closed window to the worker (after the batch is stored).
    """

    def __init__(self, enqueue: Callable[[Job], Awaitable[None]] | None = None) -> None:
        self.enqueue = enqueue
        #: Partition of the record being handled (set by the stream engine).
        self.partition = -1
        self.changes = Changes()
        self._deferred: list[Job] = []

    async def defer(self, job: Job) -> None:
        """Keep a closed window until the batch that closed it is stored."""
        self._deferred.append(job)

    def take(self) -> Changes:
        """The changes noted since the last call (and forget them)."""
        changes, self.changes = self.changes, Changes()
        return changes

    async def release(self) -> None:
        """Hand the deferred windows to the worker (once their rows are stored)."""
        deferred, self._deferred = self._deferred, []
        if self.enqueue is None:
            raise RuntimeError("the journal has no worker to hand windows to")
        for job in deferred:
            await self.enqueue(job)

    def discard(self) -> None:
        """Forget what was not stored (a stopped or revoked batch is consumed again)."""
        self.changes = Changes()
        self._deferred = []
