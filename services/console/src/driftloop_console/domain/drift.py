"""The drift page's chart and tables, out of the monitor's drift history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftloop_console.domain.values import iso_utc

__all__ = ["ColumnSeries", "DriftChart", "drift_chart"]


@dataclass
class ColumnSeries:
    """One column across the windows: its score and threshold in each (None: not tested).

    Attributes:
        name: The column.
        stattest: The test that scored it (``K-S p_value``...).
        scores: Score per window, oldest first.
        thresholds: Threshold per window.
        drifted_in: Whether it drifted, per window.
    """

    name: str
    stattest: str = ""
    scores: list[float | None] = field(default_factory=list)
    thresholds: list[float | None] = field(default_factory=list)
    drifted_in: list[bool] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """It drifted in at least one window shown."""
        return any(self.drifted_in)

    @property
    def drifted_windows(self) -> int:
        """In how many windows shown it drifted."""
        return sum(self.drifted_in)

    @property
    def drifted_latest(self) -> bool:
        """It drifted in the newest window shown."""
        return bool(self.drifted_in and self.drifted_in[-1])


@dataclass
class DriftChart:
    """What the drift chart draws: windows oldest first, a series per column."""

    windows: list[dict[str, Any]]
    columns: list[ColumnSeries]

    def as_data(self) -> dict[str, Any]:
        """The chart's data, for the page's ``<script type="application/json">``."""
        return {
            "labels": [w["label"] for w in self.windows],
            "windows": self.windows,
            "columns": [
                {
                    "name": c.name,
                    "stattest": c.stattest,
                    "scores": c.scores,
                    "thresholds": c.thresholds,
                    "drifted_in": c.drifted_in,
                    "drifted": c.drifted,
                }
                for c in self.columns
            ],
        }


def drift_chart(history: Sequence[Mapping[str, Any]]) -> DriftChart:
    """The chart of ``history`` (the monitor's drift results, newest first)."""
    ordered = list(reversed(history))
    series: dict[str, ColumnSeries] = {}
    windows = []
    for index, result in enumerate(ordered):
        end = iso_utc(result.get("end_time"))
        windows.append(
            {
                "id": result.get("id"),
                "window_id": result.get("window_id"),
                "version": result.get("version"),
                "start": iso_utc(result.get("start_time")),
                "end": end,
                "label": f"v{result.get('version')} · {end or index}",
                "status": result.get("status"),
                "rows": result.get("rows"),
                "drift_share": result.get("drift_share"),
                "dataset_drift": bool(result.get("dataset_drift")),
                "report_id": result.get("report_id"),
            }
        )
        for column in result.get("columns") or []:
            name = str(column.get("column"))
            found = series.get(name)
            if found is None:
                found = series[name] = ColumnSeries(
                    name=name,
                    stattest=str(column.get("stattest_display") or column.get("stattest") or ""),
                    scores=[None] * index,
                    thresholds=[None] * index,
                    drifted_in=[False] * index,
                )
            found.scores.append(_number(column.get("score")))
            found.thresholds.append(_number(column.get("threshold")))
            found.drifted_in.append(bool(column.get("drifted")))
        for found in series.values():  # columns this window did not test
            while len(found.scores) <= index:
                found.scores.append(None)
                found.thresholds.append(None)
                found.drifted_in.append(False)
    return DriftChart(windows=windows, columns=sorted(series.values(), key=lambda c: c.name))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
