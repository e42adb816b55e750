"""A model version's drift state, and how a decided window changes it.

Pure: :func:`after_window` and :func:`after_labels` take the state the monitor remembers
and what a window showed, and return the new state and the events that change is
announced with. The use case (``service_layer/decisions.py``) stores both in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from driftloop_events.envelope import CloudEvent
from driftloop_monitor.domain import events
from driftloop_monitor.domain.drift import DriftDecision
from driftloop_monitor.domain.windows import ClosedWindow

__all__ = ["AlertLink", "DriftStep", "VersionState", "after_labels", "after_window"]


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
) -> DriftStep:
    """The state after ``window`` was decided, with ``drift.detected`` or ``drift.cleared``.

    Args:
        state: The version's state before the window (left unchanged).
        window: The closed window.
        status: ``"tested"``, ``"drift"``, ``"no_reference"`` or ``"too_small"``.
        decision: The drift decision of a tested window, else None.
        link: The report an alert links to.

    Returns:
        The new state; one event when the version starts drifting (``drift.detected``) or
        stops (``drift.cleared``), none otherwise.
    """
    rows = len(window.rows)
    new = replace(state, windows=state.windows + 1, rows=state.rows + rows)
    if status == "no_reference":
        new.unreferenced_rows += rows
        new.unreferenced_windows += 1
    if decision is None or decision.dataset_drift == state.drifted:
        return DriftStep(new)
    if decision.dataset_drift:
        detected = events.drift_detected(
            window,
            decision,
            report_id=link.report_id,
            report_url=link.report_url,
            reference_digest=link.reference_digest,
            now=link.now,
        )
        new.drifted = True
        new.detected_event_id = detected.id
        return DriftStep(new, (detected,))
    cleared = events.drift_cleared(
        window,
        decision,
        report_id=link.report_id,
        report_url=link.report_url,
        detected_event_id=state.detected_event_id,
        now=link.now,
    )
    new.drifted = False
    new.detected_event_id = None
    return DriftStep(new, (cleared,))


def after_labels(state: VersionState, rows: int) -> VersionState:
    """The state after a performance window of ``rows`` labelled predictions."""
    return replace(state, labelled_rows=state.labelled_rows + rows)
