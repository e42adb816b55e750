"""Performance of a model version on labelled predictions: accuracy, F1, RMSE, MAE."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop_monitor.domain.policy import HIGHER_IS_BETTER
from driftloop_monitor.domain.windows import VersionKey


@dataclass(frozen=True)
class PerformanceResult:
    """One performance window's outcome."""

    metric: str
    value: float
    threshold: float
    higher_is_better: bool
    rows: int

    @property
    def degraded(self) -> bool:
        """Worse than the threshold."""
        if self.higher_is_better:
            return self.value < self.threshold
        return self.value > self.threshold


def metric_value(metric: str, y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Compute ``metric`` with scikit-learn (F1 is macro-averaged over the classes seen).

    Raises:
        ValueError: An unknown metric, no rows, or non-numeric values for a regression metric.
    """
    if not y_true:
        raise ValueError("no labelled rows")
    from sklearn import metrics  # type: ignore[import-untyped]

    if metric == "accuracy":
        return float(metrics.accuracy_score([str(v) for v in y_true], [str(v) for v in y_pred]))
    if metric == "f1":
        truth, pred = [str(v) for v in y_true], [str(v) for v in y_pred]
        return float(metrics.f1_score(truth, pred, average="macro", zero_division=0))
    truth_f, pred_f = [float(v) for v in y_true], [float(v) for v in y_pred]
    if metric == "rmse":
        return math.sqrt(float(metrics.mean_squared_error(truth_f, pred_f)))
    if metric == "mae":
        return float(metrics.mean_absolute_error(truth_f, pred_f))
    raise ValueError(f"unknown metric {metric!r}")


def evaluate(
    metric: str, threshold: float, y_true: Sequence[Any], y_pred: Sequence[Any]
) -> PerformanceResult:
    """Compute ``metric`` and compare it with ``threshold``."""
    return PerformanceResult(
        metric=metric,
        value=metric_value(metric, y_true, y_pred),
        threshold=threshold,
        higher_is_better=HIGHER_IS_BETTER[metric],
        rows=len(y_true),
    )


@dataclass
class PerformanceWindow:
    """Labelled predictions of one model version, waiting for their window to fill.

    Attributes:
        start: Time of the earliest prediction.
        run_id: Tracking run of the version.
        truth: The labels, in join order.
        predicted: The predictions they were joined with.
        last: Time of the latest prediction.
        id: The window's id when it is stored (derived from its first prediction, so a
            window rebuilt after a restart keeps it); None: one is made when it is decided.
    """

    start: datetime
    run_id: str
    truth: list[Any] = field(default_factory=list)
    predicted: list[Any] = field(default_factory=list)
    last: datetime | None = None
    id: str | None = None

    def add(self, truth: Any, predicted: Any, at: datetime) -> None:
        """Add one prediction (made at ``at``) joined with its label."""
        self.truth.append(truth)
        self.predicted.append(predicted)
        self.last = max(self.last or at, at)
        self.start = min(self.start, at)


@dataclass
class PerformanceJob:
    """A full (or flushed) performance window of one model version, for the worker."""

    key: VersionKey
    window: PerformanceWindow
