"""The monitor's use cases together: what the stream's handlers and the REST API call.

Predictions fill tumbling windows in memory (:mod:`.predictions`); closed windows go
through one queue to a single :class:`~.worker.Worker`, which decides drift with Evidently
(in a thread), stores the result, and publishes ``drift.detected`` / ``drift.cleared``
through the outbox when the version's drift state changes (:mod:`.decisions`). Labels
joined with their predictions (:mod:`.labels`) fill performance windows the same way.
Reference data (:mod:`.references`) and reports (:mod:`.reports`) serve both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop_monitor.domain.windows import RowChunk, utc_now
from driftloop_monitor.service_layer.decisions import Decisions
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.labels import LabelJoin
from driftloop_monitor.service_layer.policies import Policies
from driftloop_monitor.service_layer.ports import (
    MonitorStorePort,
    OutboxPort,
    ReferenceSourcePort,
    ReportFilesPort,
    WaitingPredictionsPort,
)
from driftloop_monitor.service_layer.predictions import PredictionWindows
from driftloop_monitor.service_layer.references import References
from driftloop_monitor.service_layer.reports import Reports
from driftloop_monitor.service_layer.worker import Worker

__all__ = ["Monitor"]


@dataclass
class Monitor:
    """The use cases, wired to each other (the handlers' dependency)."""

    policies: Policies
    references: References
    reports: Reports
    decisions: Decisions
    worker: Worker
    windows: PredictionWindows
    labels: LabelJoin
    files: ReportFilesPort
    #: The batch's state changes, for the durable stream engine (None: memory only).
    journal: StateJournal | None = None

    @classmethod
    def wire(
        cls,
        *,
        store: MonitorStorePort,
        outbox: OutboxPort,
        files: ReportFilesPort,
        source: ReferenceSourcePort,
        waiting: WaitingPredictionsPort,
        base_url: str,
        window_rows: int = 1000,
        window_seconds: float = 3600.0,
        label_ttl: float = 86_400.0,
        clock: Callable[[], datetime] = utc_now,
        policy_ttl: float = 2.0,
        queue_size: int = 32,
        journal: StateJournal | None = None,
    ) -> Monitor:
        """Build the use cases over the given ports.

        Args:
            store: The monitor's tables.
            outbox: Events go out with the change that causes them.
            files: HTML reports and kept windows.
            source: Where reference data comes from on ``alias.set``.
            waiting: Where predictions wait for their label.
            base_url: Prefix of report links.
            window_rows: Default rows per window.
            window_seconds: Default seconds per window.
            label_ttl: Seconds a prediction waits for its label.
            clock: Returns now (tests pass a fake one).
            policy_ttl: Seconds a cached policy is used before it is read again.
            queue_size: Closed windows waiting for the worker at most.
            journal: With the durable stream engine: the use cases note their changes
                in it, and closed windows reach the worker through it once stored.
        """
        policies = Policies(store, ttl=policy_ttl)
        references = References(store=store, source=source)
        reports = Reports(
            store=store, files=files, references=references, policies=policies, base_url=base_url
        )
        decisions = Decisions(
            store=store,
            outbox=outbox,
            files=files,
            references=references,
            policies=policies,
            reports=reports,
            clock=clock,
        )
        worker = Worker(decisions, queue_size=queue_size)
        enqueue = worker.enqueue
        if journal is not None:
            journal.enqueue = worker.enqueue
            enqueue = journal.defer
        return cls(
            policies=policies,
            references=references,
            reports=reports,
            decisions=decisions,
            worker=worker,
            windows=PredictionWindows(
                policies=policies,
                enqueue=enqueue,
                window_rows=window_rows,
                window_seconds=window_seconds,
                clock=clock,
                kinds=references.value_kinds,
                journal=journal,
            ),
            labels=LabelJoin(
                waiting=waiting,
                policies=policies,
                enqueue=enqueue,
                label_ttl=label_ttl,
                journal=journal,
            ),
            files=files,
            journal=journal,
        )

    async def start(self) -> None:
        """Start the worker that decides closed windows."""
        await self.worker.start()

    async def stop(self) -> None:
        """Stop the worker; windows still open are lost."""
        await self.worker.stop()

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until every queued window has been decided (tests, shutdown)."""
        await self.worker.drain(timeout)

    async def flush(self) -> None:
        """Close every open window and performance window now (tests)."""
        await self.windows.flush()
        await self.labels.flush()

    async def restore(self, *, chunks: list[RowChunk], pending: list[dict[str, Any]]) -> None:
        """Rebuild the stream state of partitions this replica was given, from what was
        stored; windows that were closed but not decided go to the worker."""
        for window in await self.windows.restore(chunks):
            await self.worker.enqueue(window)
        for job in await self.labels.restore(pending):
            await self.worker.enqueue(job)

    def reset(self) -> None:
        """Forget the in-memory stream state (partitions moved); versions' states are
        read again, since another replica may have decided their windows meanwhile."""
        self.windows.reset()
        self.labels.reset()
        self.decisions.forget_states()
        if self.journal is not None:
            self.journal.discard()

    def open_windows(self) -> dict[str, int]:
        """Rows waiting in each version's open window."""
        return self.windows.open_windows()
