"""The events the monitor publishes on ``monitor.alerts``, built from its decisions.

Pure functions: the caller gives the report link and the time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from driftloop.common.v1.common_pb2 import EventRef, ModelRef, Window
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop_events.envelope import CloudEvent
from driftloop_monitor.domain.drift import DriftDecision
from driftloop_monitor.domain.performance import PerformanceResult
from driftloop_monitor.domain.windows import ClosedWindow, VersionKey

__all__ = ["drift_cleared", "drift_detected", "performance_degraded", "performance_recovered"]

_COLUMN_TYPES = {
    "num": monitor_events.COLUMN_TYPE_NUMERICAL,
    "cat": monitor_events.COLUMN_TYPE_CATEGORICAL,
    "text": monitor_events.COLUMN_TYPE_TEXT,
}


def _bounds(window_id: str, rows: int, start: datetime, end: datetime) -> Window:
    bounds = Window(id=window_id, rows=rows)
    bounds.start_time.FromDatetime(start)
    bounds.end_time.FromDatetime(end)
    return bounds


def _model(window: ClosedWindow) -> ModelRef:
    return ModelRef(name=window.key.model, version=window.key.version, run_id=window.run_id)


def drift_detected(
    window: ClosedWindow,
    decision: DriftDecision,
    *,
    report_id: str,
    report_url: str,
    reference_digest: str,
    episode_id: str,
    now: datetime,
) -> CloudEvent[Any]:
    """``drift.detected``: the version's inputs started drifting in ``window`` (a drift
    episode opens)."""
    detected = monitor_events.DriftDetected(
        model=_model(window),
        window=_bounds(window.id, len(window.rows), window.start, window.end),
        columns=[
            monitor_events.ColumnDrift(
                column=c.column,
                column_type=_COLUMN_TYPES[c.column_type],
                stattest=c.stattest,
                score=c.score,
                threshold=c.threshold,
                drifted=c.drifted,
            )
            for c in decision.columns
        ],
        drift_share=decision.share,
        dataset_drift_threshold=decision.drift_share,
        report_id=report_id,
        report_url=report_url,
        reference_digest=reference_digest,
        episode_id=episode_id,
    )
    detected.detect_time.FromDatetime(now)
    return CloudEvent.new(detected, time=now)


def drift_cleared(
    window: ClosedWindow,
    decision: DriftDecision,
    *,
    report_id: str,
    report_url: str,
    detected_event_id: str | None,
    episode_id: str,
    now: datetime,
) -> CloudEvent[Any]:
    """``drift.cleared``: the version's inputs stopped drifting, as of ``window`` (the
    drift episode closes)."""
    cleared = monitor_events.DriftCleared(
        model=_model(window),
        window=_bounds(window.id, len(window.rows), window.start, window.end),
        drift_share=decision.share,
        dataset_drift_threshold=decision.drift_share,
        report_id=report_id,
        report_url=report_url,
        cleared_event=EventRef(
            id=detected_event_id or "",
            type="driftloop.monitor.drift.detected",
            source="/driftloop/monitor",
        ),
        episode_id=episode_id,
    )
    cleared.clear_time.FromDatetime(now)
    return CloudEvent.new(cleared, time=now)


def performance_degraded(
    key: VersionKey,
    result: PerformanceResult,
    *,
    run_id: str,
    window_id: str,
    start: datetime,
    end: datetime,
    report_id: str,
    report_url: str,
    episode_id: str,
    now: datetime,
) -> CloudEvent[Any]:
    """``performance.degraded``: a performance window came out worse than the threshold
    (a performance episode opens)."""
    degraded = monitor_events.PerformanceDegraded(
        model=ModelRef(name=key.model, version=key.version, run_id=run_id),
        metric=result.metric,
        value=result.value,
        threshold=result.threshold,
        higher_is_better=result.higher_is_better,
        window=_bounds(window_id, result.rows, start, end),
        labelled_rows=result.rows,
        report_id=report_id,
        report_url=report_url,
        episode_id=episode_id,
    )
    degraded.detect_time.FromDatetime(now)
    return CloudEvent.new(degraded, time=now)


def performance_recovered(
    key: VersionKey,
    result: PerformanceResult,
    *,
    run_id: str,
    window_id: str,
    start: datetime,
    end: datetime,
    episode_id: str,
    now: datetime,
) -> CloudEvent[Any]:
    """``performance.recovered``: the version meets its threshold again (the performance
    episode closes)."""
    recovered = monitor_events.PerformanceRecovered(
        model=ModelRef(name=key.model, version=key.version, run_id=run_id),
        metric=result.metric,
        value=result.value,
        threshold=result.threshold,
        higher_is_better=result.higher_is_better,
        window=_bounds(window_id, result.rows, start, end),
        labelled_rows=result.rows,
        episode_id=episode_id,
    )
    recovered.recover_time.FromDatetime(now)
    return CloudEvent.new(recovered, time=now)
