"""The monitor's drift decision equals Evidently's DataDriftPreset report on the same data."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_monitor.domain.drift import decide, full_report, make_reference
from driftloop_monitor.domain.policy import MonitorPolicy

from .data import frame

pytestmark = pytest.mark.unit


def evidently_preset(
    reference: pd.DataFrame, current: pd.DataFrame, **options: Any
) -> dict[str, Any]:
    """Per column (score, threshold, drifted) and the dataset share, from the real report."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(**options)], include_tests=True).run(
        Dataset.from_pandas(current), Dataset.from_pandas(reference)
    )
    return _read_report(snapshot.dict())


def _read_report(report: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in report["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {
                "score": metric["value"],
                "threshold": config["threshold"],
                "method": config["method"],
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    for test in report["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    return {"columns": columns, "share": share}


def ours(reference: pd.DataFrame, current: pd.DataFrame, policy: MonitorPolicy) -> dict[str, Any]:
    decision = decide(make_reference(reference), current, policy)
    return {
        "columns": {
            c.column: {
                "score": pytest.approx(c.score, rel=1e-9, abs=1e-12),
                "threshold": c.threshold,
                "method": c.stattest_display,
                "drifted": c.drifted,
            }
            for c in decision.columns
        },
        "share": pytest.approx(decision.share),
        "dataset_drift": decision.dataset_drift,
        "drifted": sorted(c.column for c in decision.drifted_columns),
    }


@pytest.mark.parametrize(
    ("reference_rows", "shifted"),
    [
        # > 1000 reference rows: Wasserstein for numbers, Jensen-Shannon for categories.
        (2000, ["x0", "x1", "x2", "colour", "flag"]),
        # <= 1000: K-S, chi-square and the z-test.
        (600, ["x4", "colour"]),
    ],
)
def test_per_column_decisions_equal_evidentlys_data_drift_preset_on_shifted_windows(
    reference_rows: int, shifted: list[str]
) -> None:
    reference = frame(reference_rows, seed=1, integers=True)
    current = frame(500, seed=2, shifted=[*shifted, "level"], integers=True)

    mine = ours(reference, current, MonitorPolicy())
    theirs = evidently_preset(reference, current)

    assert mine["columns"] == theirs["columns"]
    assert mine["share"] == theirs["share"]
    assert mine["drifted"] == sorted([*shifted, "level"])
    assert mine["dataset_drift"] == (theirs["share"] >= 0.5)


def test_policy_methods_and_thresholds_are_applied_as_the_preset_applies_them() -> None:
    reference = frame(1500, seed=3)
    current = frame(400, seed=4, shifted=["x0"])
    options: dict[str, Any] = {
        "num_method": "psi",
        "cat_method": "chisquare",
        "per_column_threshold": {"x1": 0.5},
        "drift_share": 0.1,
    }

    mine = ours(reference, current, MonitorPolicy(**options))
    theirs = evidently_preset(reference, current, **options)

    # A method given by name is reported by that name, not its display name.
    for columns in (mine["columns"], theirs["columns"]):
        for result in columns.values():
            result.pop("method")
    assert mine["columns"] == theirs["columns"]
    assert mine["columns"]["x1"]["threshold"] == 0.5
    assert mine["dataset_drift"] is True


def test_stationary_windows_never_drift_as_a_dataset() -> None:
    reference = make_reference(frame(3000, seed=10))
    decisions = [decide(reference, frame(1000, seed=100 + i), MonitorPolicy()) for i in range(15)]
    assert not any(d.dataset_drift for d in decisions)


def test_the_stored_report_is_evidentlys_report_with_the_same_verdicts() -> None:
    reference = make_reference(frame(1200, seed=5))
    current = frame(300, seed=6, shifted=["x2", "x3", "x4", "x5"])
    decision = decide(reference, current, MonitorPolicy())

    report_json, html = full_report(reference, current, MonitorPolicy())

    read = _read_report(json.loads(report_json))
    assert {c: v["drifted"] for c, v in read["columns"].items()} == {
        c.column: c.drifted for c in decision.columns
    }
    assert "<html" in html.lower()


def test_columns_missing_from_a_window_are_skipped_not_fatal() -> None:
    reference = make_reference(frame(500, seed=7))
    current = frame(200, seed=8).drop(columns=["x0"])
    current["x1"] = None
    decision = decide(reference, current, MonitorPolicy())
    assert set(decision.skipped) == {"x0", "x1"}
    assert "x2" in {c.column for c in decision.columns}


def test_infinities_and_missing_values_of_a_window_are_left_out_of_its_tests() -> None:
    reference = make_reference(frame(600, seed=1))
    window = frame(200, seed=2)
    holed = window.copy()
    holed.loc[[3, 50, 120], "x0"] = [float("inf"), float("-inf"), float("nan")]

    def score(data: pd.DataFrame) -> float:
        columns = decide(reference, data, MonitorPolicy()).columns
        return next(c.score for c in columns if c.column == "x0")

    assert score(holed) == pytest.approx(score(window.drop(index=[3, 50, 120])), rel=1e-12)
    assert score(holed) != pytest.approx(score(window), rel=1e-6)
