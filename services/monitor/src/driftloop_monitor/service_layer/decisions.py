"""Deciding a closed window: drift against the version's reference, or performance.

The decision runs Evidently's tests (in a thread); the version's state changes by
:func:`~driftloop_monitor.domain.drift_state.after_window`, and the result, the new state
and the events of that change are stored in one transaction, the events through the
outbox. The report of a window that alerts is made before its event is staged, so the
link in the event always works.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from prometheus_client import Counter, Gauge, Histogram

from driftloop_kit import tracing
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.drift import DriftDecision, ReferenceSet
from driftloop_monitor.domain.drift_state import (
    AlertLink,
    PerformanceBounds,
    VersionState,
    after_performance,
    after_window,
)
from driftloop_monitor.domain.performance import PerformanceJob, PerformanceResult, evaluate
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.domain.windows import ClosedWindow, VersionKey, utc_now, window_id
from driftloop_monitor.service_layer.policies import Policies
from driftloop_monitor.service_layer.ports import MonitorStorePort, OutboxPort, ReportFilesPort
from driftloop_monitor.service_layer.references import References
from driftloop_monitor.service_layer.reports import Reports, new_report_id, performance_body

__all__ = ["Decisions"]

log = logging.getLogger(__name__)

WINDOWS = Counter(
    "driftloop_monitor_windows_total",
    "Closed windows by outcome (tested, drift, no_reference, too_small).",
    ["model", "status"],
)
UNREFERENCED = Counter(
    "driftloop_monitor_unreferenced_rows_total",
    "Prediction rows of versions without reference data (counted, not tested).",
    ["model", "version"],
)
DRIFT_SCORE = Gauge(
    "driftloop_monitor_drift_score",
    "Last window's drift score per column (a p-value or a distance; see the stattest).",
    ["model", "column", "stattest"],
)
DRIFT_SHARE = Gauge(
    "driftloop_monitor_drift_share",
    "Share of drifted columns in the last tested window.",
    ["model"],
)
DECISION_SECONDS = Histogram(
    "driftloop_monitor_drift_decision_seconds", "Time of one window's drift decision."
)


def _frame_and_decide(
    rows: list[dict[str, Any]], reference: ReferenceSet, policy: MonitorPolicy
) -> tuple[pd.DataFrame, DriftDecision]:
    """The window as a frame, and its decision (in a worker thread)."""
    current = drift.current_frame(rows, reference)
    started = time.perf_counter()
    decision = drift.decide(reference, current, policy)
    DECISION_SECONDS.observe(time.perf_counter() - started)
    return current, decision


class Decisions:
    """Decides closed windows; called by the :class:`~.worker.Worker` only, one at a time.

    Args:
        store: Results, reports and version state.
        outbox: Events go out with the change that causes them.
        files: HTML reports and kept windows.
        references: Each version's reference data.
        policies: Each model's policy.
        reports: Report links.
        clock: Returns now (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        store: MonitorStorePort,
        outbox: OutboxPort,
        files: ReportFilesPort,
        references: References,
        policies: Policies,
        reports: Reports,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.files = files
        self.references = references
        self.policies = policies
        self.reports = reports
        self.clock = clock
        self._states: dict[VersionKey, VersionState] = {}

    def forget_states(self) -> None:
        """Read every version's state from the store again (after a failed decision)."""
        self._states.clear()

    async def _state(self, key: VersionKey) -> VersionState:
        # Only the worker writes a version's state, one window at a time: read it once.
        state = self._states.get(key)
        if state is None:
            async with self.store.session() as session:
                state = await self.store.version_state(
                    session, model=key.model, version=key.version
                )
            self._states[key] = state
        return state

    async def decide_window(self, window: ClosedWindow) -> dict[str, Any] | None:
        """Decide one closed window, store the result, publish a state change (in a span
        that continues the trace of the window's last prediction, when tracing is on).

        Its stored rows are deleted with the result; a window already decided (rebuilt
        from stored rows after a restart or a rebalance) is not decided again (None).
        """
        with tracing.span(
            "monitor.window",
            parent=window.traceparent,
            attributes={"driftloop.window_id": window.id, "driftloop.rows": len(window.rows)},
        ):
            return await self._decide_window(window)

    async def _decide_window(self, window: ClosedWindow) -> dict[str, Any] | None:
        key = window.key
        if await self.store.decided(kind="drift", window_id=window.id):
            # A window rebuilt from stored rows whose decision was stored meanwhile.
            async with self.store.session() as session:
                await self.store.forget_window(session, window_id=window.id)
            return None
        policy = await self.policies.get(key.model)
        reference = await self.references.get(key)
        decision: DriftDecision | None = None
        current: pd.DataFrame | None = None
        if reference is None:
            status = "no_reference"
            UNREFERENCED.labels(key.model, str(key.version)).inc(len(window.rows))
        elif len(window.rows) < policy.min_window_rows and window.closed_by != "rows":
            status = "too_small"
        else:
            current, decided = await asyncio.to_thread(
                _frame_and_decide, window.rows, reference, policy
            )
            decision = decided
            status = "drift" if decided.dataset_drift else "tested"
            DRIFT_SHARE.labels(key.model).set(decided.share)
            for column in decided.columns:
                DRIFT_SCORE.labels(key.model, column.column, column.stattest).set(column.score)
        WINDOWS.labels(key.model, status).inc()

        link_id = new_report_id("rep")
        step = after_window(
            await self._state(key),
            window,
            status=status,
            decision=decision,
            link=AlertLink(
                report_id=link_id,
                report_url=self.reports.url(link_id),
                reference_digest=reference.digest if reference else "",
                now=self.clock(),
            ),
            rule=policy.episodes,
        )
        event = step.events[0] if step.events else None
        report_id = None
        body = ""
        if event is not None and reference is not None and current is not None:
            # Made before the event is staged, so its link works; seconds, in a thread.
            report_id = link_id
            body, html = await asyncio.to_thread(drift.full_report, reference, current, policy)
            await self.files.write_html(report_id, html)
        if current is not None and reference is not None:
            self.files.keep_window(str(key), window.id, current)

        result = {
            "model_name": key.model,
            "version": key.version,
            "run_id": window.run_id,
            "window_id": window.id,
            "start_time": window.start,
            "end_time": window.end,
            "rows": len(window.rows),
            "status": status,
            "drift_share": decision.share if decision else 0.0,
            "dataset_drift_threshold": policy.drift_share,
            "dataset_drift": bool(decision and decision.dataset_drift),
            "columns": [c.as_dict() for c in decision.columns] if decision else [],
            "skipped": decision.skipped if decision else {},
            "reference_digest": reference.digest if reference else "",
            "report_id": report_id,
            "event_type": event.type if event else None,
            "event_id": event.id if event else None,
        }
        async with self.store.session() as session:
            await self.store.add_drift_result(session, **result)
            if report_id is not None:
                await self.store.add_report(
                    session,
                    report_id=report_id,
                    kind="drift",
                    model=key.model,
                    version=key.version,
                    window_id=window.id,
                    body=body,
                    has_html=True,
                )
            await self.store.save_state(session, state=step.state)
            await self.store.forget_window(session, window_id=window.id)
            if step.events:
                await self.outbox.add(session, *step.events)
        self._states[key] = step.state
        return result

    async def decide_performance(self, job: PerformanceJob) -> None:
        """Compute a performance window's metric; ``performance.degraded`` when it is worse."""
        key, window = job.key, job.window
        policy = await self.policies.get(key.model)
        result: PerformanceResult | None = None
        if policy.performance_metric is not None and policy.performance_threshold is not None:
            try:
                result = await asyncio.to_thread(
                    evaluate,
                    policy.performance_metric,
                    policy.performance_threshold,
                    window.truth,
                    window.predicted,
                )
            except (TypeError, ValueError) as error:
                log.warning(
                    "performance metric failed", extra={"model": str(key), "error": str(error)}
                )
        wid = window.id or window_id(key, window.start)
        if window.id is not None and await self.store.decided(kind="performance", window_id=wid):
            async with self.store.session() as session:
                await self.store.forget_window(session, window_id=wid)
            return
        end = (window.last or window.start) + timedelta(microseconds=1)
        link_id = new_report_id("perf")
        step = after_performance(
            await self._state(key),
            result,
            rows=len(window.truth),
            where=PerformanceBounds(
                key=key, run_id=window.run_id, window_id=wid, start=window.start, end=end
            ),
            link=AlertLink(
                report_id=link_id,
                report_url=self.reports.url(link_id),
                reference_digest="",
                now=self.clock(),
            ),
            rule=policy.episodes,
        )
        state = step.state
        event = step.events[0] if step.events else None
        # A report for every degraded window (the alert links to the one that opened it).
        report_id = link_id if result is not None and result.degraded else None
        async with self.store.session() as session:
            await self.store.save_state(session, state=state)
            if window.id is not None:
                await self.store.forget_window(session, window_id=window.id)
            if result is not None:
                if report_id is not None:
                    await self.store.add_report(
                        session,
                        report_id=report_id,
                        kind="performance",
                        model=key.model,
                        version=key.version,
                        window_id=wid,
                        body=performance_body(key, wid, window, result),
                        has_html=False,
                    )
                await self.store.add_performance_result(
                    session,
                    model_name=key.model,
                    version=key.version,
                    run_id=window.run_id,
                    window_id=wid,
                    start_time=window.start,
                    end_time=end,
                    rows=result.rows,
                    metric=result.metric,
                    value=result.value,
                    threshold=result.threshold,
                    degraded=result.degraded,
                    report_id=report_id,
                    event_id=event.id if event else None,
                )
            if event is not None:
                await self.outbox.add(session, event)
        self._states[key] = state
