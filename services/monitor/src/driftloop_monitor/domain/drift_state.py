"""A model version's drift and performance episodes, and how a decided window changes them.

An **episode** is one stretch of a condition on one version: drift, or performance
worse than its threshold. It opens with the first window showing the condition (one
alert: ``drift.detected`` or ``performance.degraded``, carrying a new episode id) and
closes only once the condition has been clear for ``close_after_windows`` windows in a
row (``drift.cleared`` or ``performance.recovered``, with the same id). Windows in
between update the episode and publish nothing, so a flapping condition is one episode
and one alert, as alerting systems do with a resolve duration. A drift window is
"clear" below the close share (``drift_close_share``, by default the open share), so
the two thresholds give hysteresis.

Pure: :func:`after_window` and :func:`after_performance` take the state the monitor
remembers and what a window showed, and return the new state and the events that change
is announced with. The use case (``service_layer/decisions.py``) stores both in one
transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from driftloop_events.envelope import CloudEvent
from driftloop_monitor.domain import events
from driftloop_monitor.domain.drift import DriftDecision
from driftloop_monitor.domain.performance import PerformanceResult
from driftloop_monitor.domain.policy import EpisodeRule
from driftloop_monitor.domain.windows import ClosedWindow, VersionKey

__all__ = [
    "AlertLink",
    "DriftStep",
    "EpisodeRule",
    "PerformanceBounds",
    "VersionState",
    "after_performance",
    "after_window",
    "new_episode_id",
]


def new_episode_id(model: str, version: int) -> str:
    """A new episode's id, e.g. ``ep-iris-classifier-3-7f2a91c0``."""
    return f"ep-{model}-{version}-{uuid.uuid4().hex[:8]}"


@dataclass
class VersionState:
    """What the monitor remembers about one model version.

    ``exists`` is the store's bookkeeping (insert or update); it is not part of the state.
    """

    model: str
    version: int
    drifted: bool = False
    detected_event_id: str | None = None
    windows: int = 0
    rows: int = 0
    unreferenced_rows: int = 0
    unreferenced_windows: int = 0
    labelled_rows: int = 0
    #: The open drift episode (``drifted`` is True while it is open).
    drift_episode_id: str | None = None
    #: Windows of the open drift episode, and clear ones in a row at its end.
    drift_episode_windows: int = 0
    drift_clear_windows: int = 0
    #: The open performance episode, its degraded-event id, and clear windows in a row.
    performance_episode_id: str | None = None
    degraded_event_id: str | None = None
    performance_episode_windows: int = 0
    performance_clear_windows: int = 0
    exists: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (without the bookkeeping flag)."""
        return {
            "model_name": self.model,
            "version": self.version,
            "drifted": self.drifted,
            "windows": self.windows,
            "rows": self.rows,
            "unreferenced_rows": self.unreferenced_rows,
            "unreferenced_windows": self.unreferenced_windows,
            "labelled_rows": self.labelled_rows,
            "drift_episode": {
                "id": self.drift_episode_id,
                "windows": self.drift_episode_windows,
                "clear_windows": self.drift_clear_windows,
            }
            if self.drift_episode_id
            else None,
            "performance_episode": {
                "id": self.performance_episode_id,
                "windows": self.performance_episode_windows,
                "clear_windows": self.performance_clear_windows,
            }
            if self.performance_episode_id
            else None,
        }


@dataclass(frozen=True)
class AlertLink:
    """The report an alert of this window would link to (made only if there is an alert).

    Attributes:
        report_id: The report's id.
        report_url: Where clients read it.
        reference_digest: Digest of the reference data the window was tested against.
        now: The time of the decision.
    """

    report_id: str
    report_url: str
    reference_digest: str
    now: datetime


@dataclass(frozen=True)
class DriftStep:
    """The outcome of one window: the version's new state and the events to publish."""

    state: VersionState
    events: tuple[CloudEvent[Any], ...] = ()


def after_window(
    state: VersionState,
    window: ClosedWindow,
    *,
    status: str,
    decision: DriftDecision | None,
    link: AlertLink,
    rule: EpisodeRule | None = None,
) -> DriftStep:
    """The state after ``window`` was decided, with ``drift.detected`` or ``drift.cleared``.

    Args:
        state: The version's state before the window (left unchanged).
        window: The closed window.
        status: ``"tested"``, ``"drift"``, ``"no_reference"`` or ``"too_small"``.
        decision: The drift decision of a tested window, else None.
        link: The report an alert links to.
        rule: When an open episode closes (default: two clear windows in a row).

    Returns:
        The new state; ``drift.detected`` when a drift episode opens, ``drift.cleared``
        when it closes, nothing otherwise (an untested window changes no episode).
    """
    rule = rule or EpisodeRule()
    rows = len(window.rows)
    new = replace(state, windows=state.windows + 1, rows=state.rows + rows)
    if status == "no_reference":
        new.unreferenced_rows += rows
        new.unreferenced_windows += 1
    if decision is None:
        return DriftStep(new)
    if not state.drifted:
        if not decision.dataset_drift:
            return DriftStep(new)
        episode = new_episode_id(window.key.model, window.key.version)
        detected = events.drift_detected(
            window,
            decision,
            report_id=link.report_id,
            report_url=link.report_url,
            reference_digest=link.reference_digest,
            episode_id=episode,
            now=link.now,
        )
        new.drifted = True
        new.detected_event_id = detected.id
        new.drift_episode_id = episode
        new.drift_episode_windows = 1
        new.drift_clear_windows = 0
        return DriftStep(new, (detected,))
    new.drift_episode_windows += 1
    if not rule.drift_clear(decision):
        new.drift_clear_windows = 0
        return DriftStep(new)
    new.drift_clear_windows += 1
    if new.drift_clear_windows < rule.close_after_windows:
        return DriftStep(new)
    cleared = events.drift_cleared(
        window,
        decision,
        report_id=link.report_id,
        report_url=link.report_url,
        detected_event_id=state.detected_event_id,
        episode_id=state.drift_episode_id or "",
        now=link.now,
    )
    new.drifted = False
    new.detected_event_id = None
    new.drift_episode_id = None
    new.drift_episode_windows = 0
    new.drift_clear_windows = 0
    return DriftStep(new, (cleared,))


@dataclass(frozen=True)
class PerformanceBounds:
    """Where a performance window sits, for the events it may publish.

    Attributes:
        key: The model version.
        run_id: The version's training run.
        window_id: The window's id.
        start: Its first labelled prediction's time.
        end: Just after its last one.
    """

    key: VersionKey
    run_id: str
    window_id: str
    start: datetime
    end: datetime


def after_performance(
    state: VersionState,
    result: PerformanceResult | None,
    *,
    rows: int,
    where: PerformanceBounds,
    link: AlertLink,
    rule: EpisodeRule | None = None,
) -> DriftStep:
    """The state after a performance window of ``rows`` labelled predictions.

    ``performance.degraded`` opens a performance episode (once: later degraded windows
    update it); ``performance.recovered`` closes it after ``close_after_windows`` windows
    in a row that meet the threshold. A window without a result (no metric configured,
    or the metric failed) changes no episode.
    """
    rule = rule or EpisodeRule()
    new = replace(state, labelled_rows=state.labelled_rows + rows)
    if result is None:
        return DriftStep(new)
    if state.performance_episode_id is None:
        if not result.degraded:
            return DriftStep(new)
        episode = new_episode_id(where.key.model, where.key.version)
        degraded = events.performance_degraded(
            where.key,
            result,
            run_id=where.run_id,
            window_id=where.window_id,
            start=where.start,
            end=where.end,
            report_id=link.report_id,
            report_url=link.report_url,
            episode_id=episode,
            now=link.now,
        )
        new.performance_episode_id = episode
        new.degraded_event_id = degraded.id
        new.performance_episode_windows = 1
        new.performance_clear_windows = 0
        return DriftStep(new, (degraded,))
    new.performance_episode_windows += 1
    if result.degraded:
        new.performance_clear_windows = 0
        return DriftStep(new)
    new.performance_clear_windows += 1
    if new.performance_clear_windows < rule.close_after_windows:
        return DriftStep(new)
    recovered = events.performance_recovered(
        where.key,
        result,
        run_id=where.run_id,
        window_id=where.window_id,
        start=where.start,
        end=where.end,
        episode_id=state.performance_episode_id,
        now=link.now,
    )
    new.performance_episode_id = None
    new.degraded_event_id = None
    new.performance_episode_windows = 0
    new.performance_clear_windows = 0
    return DriftStep(new, (recovered,))
