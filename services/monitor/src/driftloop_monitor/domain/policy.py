"""A model's monitoring policy: windows, drift tests and thresholds, performance alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop_kit import declarations
from driftloop_kit.declarations import ColumnKind, PerformanceMetric

if TYPE_CHECKING:
    from driftloop_monitor.domain.drift import DriftDecision

__all__ = ["HIGHER_IS_BETTER", "ColumnKind", "EpisodeRule", "MonitorPolicy", "PerformanceMetric"]

#: Metrics where a larger value is better (others are errors).
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "f1": True, "rmse": False, "mae": False}


@dataclass(frozen=True)
class EpisodeRule:
    """When an open episode closes.

    Attributes:
        close_after_windows: Clear windows in a row that close an episode.
        drift_close_share: A drift window is clear below this share of drifted columns;
            None: below the policy's drift share (a window without dataset drift).
    """

    close_after_windows: int = 2
    drift_close_share: float | None = None

    def drift_clear(self, decision: DriftDecision) -> bool:
        """Whether a tested window counts towards closing a drift episode."""
        if self.drift_close_share is None:
            return not decision.dataset_drift
        return decision.share < self.drift_close_share


class MonitorPolicy(declarations.MonitorPolicy):
    """How one registered model is monitored (the document's ``monitor`` section), with
    the rules the monitor derives from it."""

    @property
    def episodes(self) -> EpisodeRule:
        """When an open episode closes."""
        return EpisodeRule(
            close_after_windows=self.close_after_windows,
            drift_close_share=self.drift_close_share,
        )
