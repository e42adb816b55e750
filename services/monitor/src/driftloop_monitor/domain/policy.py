"""A model's monitoring policy: windows, drift tests and thresholds, performance alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from driftloop_monitor.domain.drift import DriftDecision

#: Column types a policy may force, in Evidently's words.
ColumnKind = Literal["num", "cat", "text"]
#: Performance metrics the monitor computes on labelled predictions.
PerformanceMetric = Literal["accuracy", "f1", "rmse", "mae"]

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


class MonitorPolicy(BaseModel):
    """How one registered model is monitored (all its versions).

    The drift fields mirror the arguments of Evidently's ``DataDriftPreset``; left unset,
    Evidently's own defaults apply (the test and threshold it picks per column type and
    reference size, and a dataset drift share of 0.5).
    """

    model_config = ConfigDict(extra="forbid")

    window_rows: int | None = Field(
        default=None,
        ge=2,
        le=10_000_000,
        description="A window closes after this many rows; unset: the service default.",
        examples=[1000],
    )
    window_seconds: float | None = Field(
        default=None,
        gt=0,
        # Beyond ~30 days a deadline overflows nothing, but no window that long is useful;
        # an unbounded value used to overflow the deadline and dead-letter every row.
        le=31 * 86_400,
        description="A window closes this many seconds after its first row; unset: default.",
        examples=[3600],
    )
    min_window_rows: int = Field(
        default=30,
        ge=1,
        le=10_000_000,
        description="A window closed by time with fewer rows is recorded but not tested.",
    )
    columns: list[str] | None = Field(
        default=None,
        description="Columns to watch; unset: every column of the reference data.",
        examples=[["petal_width", "petal_length"]],
    )
    column_types: dict[str, ColumnKind] = Field(
        default_factory=dict,
        description="Column type overrides; others are inferred by Evidently from the reference.",
        examples=[{"zip_code": "cat"}],
    )
    drift_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="The dataset drifts when at least this share of watched columns drifts.",
    )
    method: str | None = Field(default=None, description="Evidently stattest for every column.")
    num_method: str | None = Field(default=None, description="Stattest for numerical columns.")
    cat_method: str | None = Field(default=None, description="Stattest for categorical columns.")
    text_method: str | None = Field(default=None, description="Stattest for text columns.")
    per_column_method: dict[str, str] | None = Field(
        default=None, description="Stattest per column.", examples=[{"age": "psi"}]
    )
    threshold: float | None = Field(default=None, description="Threshold for every column.")
    num_threshold: float | None = Field(default=None, description="Threshold, numerical columns.")
    cat_threshold: float | None = Field(default=None, description="Threshold, categorical columns.")
    text_threshold: float | None = Field(default=None, description="Threshold, text columns.")
    per_column_threshold: dict[str, float] | None = Field(
        default=None, description="Threshold per column."
    )
    performance_metric: PerformanceMetric | None = Field(
        default=None,
        description="Metric computed on labelled predictions; unset: no performance alert.",
    )
    performance_threshold: float | None = Field(
        default=None,
        description="`performance.degraded` when the metric is worse than this.",
        examples=[0.9],
    )
    performance_window_rows: int = Field(
        default=200, ge=1, le=1_000_000, description="Labelled predictions per performance window."
    )
    multiple_testing: Literal["none", "benjamini_hochberg"] = Field(
        default="none",
        description=(
            "`benjamini_hochberg` adjusts the p-values of a window's columns together, so "
            "that many columns do not inflate false alarms (distance tests are left as "
            "they are); `none` keeps Evidently's per-column decision."
        ),
    )
    min_effect_size: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "A column drifts only if it also moved at least this much: the mean's shift in "
            "reference standard deviations for numerical columns, the total variation "
            "distance (0-1) for others. Unset: Evidently's decision."
        ),
    )
    close_after_windows: int = Field(
        default=2,
        ge=1,
        le=1000,
        description=(
            "An open drift or performance episode closes (`drift.cleared`, "
            "`performance.recovered`) after this many clear windows in a row; until then "
            "later windows update the episode and alert no more. 1: the first clear window."
        ),
    )
    drift_close_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "A window counts towards closing a drift episode when its share of drifted "
            "columns is below this (hysteresis: at most `drift_share`); unset: below "
            "`drift_share`."
        ),
    )

    @model_validator(mode="after")
    def _threshold_with_metric(self) -> MonitorPolicy:
        if (self.performance_metric is None) != (self.performance_threshold is None):
            raise ValueError("performance_metric and performance_threshold go together")
        if self.drift_close_share is not None and self.drift_close_share > self.drift_share:
            raise ValueError(
                f"drift_close_share ({self.drift_close_share}) must be at most drift_share "
                f"({self.drift_share}): an episode cannot close on a window that opens one"
            )
        return self

    @property
    def episodes(self) -> EpisodeRule:
        """When an open episode closes."""
        return EpisodeRule(
            close_after_windows=self.close_after_windows,
            drift_close_share=self.drift_close_share,
        )

    def rows_limit(self, default: int) -> int:
        """Rows that close a window."""
        return self.window_rows or default

    def seconds_limit(self, default: float) -> float:
        """Seconds after its first row that close a window."""
        return self.window_seconds or default
