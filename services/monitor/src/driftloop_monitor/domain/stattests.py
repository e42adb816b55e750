"""Evidently's per-column drift tests, called one by one: a speed shortcut past its report.

What it replaces: running Evidently's ``Report([DataDriftPreset()])`` on every window
just to read its per-column verdicts. The report computes every metric and widget of
the preset, which costs far more than the statistical tests the drift decision needs.

How: the functions of ``evidently.legacy`` the preset itself is built on, which are not
Evidently's public API: ``calculations.stattests.registry.get_stattest`` (the test the
preset would pick by column type, reference size and distinct values, or the policy's
method), ``options.data_drift.DataDriftOptions`` (methods and thresholds from the
policy, ``get_threshold``) and ``core.ColumnType``; ``core.datasets.infer_column_type``
types the reference's columns as the preset does. Only this module touches them. The
default test of a column is picked from the reference alone when its distinct values
decide it (``_default_by_reference``, the same pick as ``registry._get_default_stattest``
without its count over reference and window together on every window).

Checked against evidently 0.7.23: ``tests/unit/monitor/test_monitor_stattests.py``
pins that version, and ``tests/unit/monitor/test_monitor_drift.py`` compares the
verdicts with the real report's. Evidently is imported on first use (it takes seconds).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from driftloop_monitor.domain.policy import MonitorPolicy

__all__ = ["ColumnTest", "infer_column_type", "options", "run_test", "warm_up"]

#: The evidently release this module was checked against.
CHECKED_AGAINST = "0.7.23"


@cache
def _evidently() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.core import datasets
        from evidently.legacy.calculations.stattests import registry
        from evidently.legacy.core import ColumnType
        from evidently.legacy.options.data_drift import DataDriftOptions
    return {
        "datasets": datasets,
        "registry": registry,
        "ColumnType": ColumnType,
        "DataDriftOptions": DataDriftOptions,
    }


def warm_up() -> None:
    """Import Evidently now (seconds), e.g. in a worker thread at start-up."""
    _evidently()


def infer_column_type(column: pd.Series) -> str:
    """Evidently's type of a column (``"num"``, ``"cat"``, ``"text"``, ``"datetime"``...)."""
    kind: str = _evidently()["datasets"].infer_column_type(column).value
    return kind


def options(policy: MonitorPolicy) -> Any:
    """Evidently's ``DataDriftOptions`` for the policy's methods and thresholds."""
    return _evidently()["DataDriftOptions"](
        drift_share=policy.drift_share,
        all_features_stattest=policy.method,
        cat_features_stattest=policy.cat_method,
        num_features_stattest=policy.num_method,
        text_features_stattest=policy.text_method,
        per_feature_stattest=policy.per_column_method,
        all_features_threshold=policy.threshold,
        cat_features_threshold=policy.cat_threshold,
        num_features_threshold=policy.num_threshold,
        text_features_threshold=policy.text_threshold,
        per_feature_threshold=policy.per_column_threshold,
    )


@dataclass(frozen=True)
class ColumnTest:
    """What Evidently's test said about one column."""

    stattest: str
    stattest_display: str
    score: float
    threshold: float
    drifted: bool


def run_test(
    column: str, kind: str, reference: pd.Series, current: pd.Series, drift_options: Any
) -> ColumnTest:
    """Run the test the preset would run on ``column`` (both series already cleaned).

    Args:
        column: The column's name (per-column methods and thresholds).
        kind: ``"num"``, ``"cat"`` or ``"text"``.
        reference: The reference's values.
        current: The window's values.
        drift_options: From :func:`options`.
    """
    ev = _evidently()
    column_type = ev["ColumnType"](kind)
    stattest_arg = drift_options.get_feature_stattest_func(column, kind)
    threshold = drift_options.get_threshold(column, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = None if stattest_arg is not None else _default_by_reference(reference, kind)
        if test is None:
            test = ev["registry"].get_stattest(reference, current, column_type, stattest_arg)
        outcome = test(reference, current, column_type, threshold)
    return ColumnTest(
        stattest=test.name,
        stattest_display=test.display_name,
        score=float(outcome.drift_score),
        threshold=float(outcome.actual_threshold),
        drifted=bool(outcome.drifted),
    )


#: Distinct values of reference columns, by the identity of the (cached, cleaned) series;
#: the series is kept beside its count so that its id is not reused while it is cached.
_distinct: dict[int, tuple[pd.Series, int]] = {}
_DISTINCT_MAX = 1024


def _default_by_reference(reference: pd.Series, kind: str) -> Any:
    """The test ``registry._get_default_stattest`` picks, when the reference alone decides
    it; None otherwise (the registry then picks it).

    Evidently counts the distinct values of reference and window together on every call
    (a concatenation of both, a quarter of a decision's time with 20 columns); that count
    is at least the reference's own, so when the reference already has more values than a
    threshold the choice does not depend on the window. Text columns are left to the
    registry.
    """
    found = _distinct.get(id(reference))
    if found is None or found[0] is not reference:
        if len(_distinct) >= _DISTINCT_MAX:
            _distinct.clear()
        found = _distinct[id(reference)] = (reference, int(reference.nunique()))
    distinct = found[1]
    tests = _evidently()["registry"].stattests
    large = reference.shape[0] > 1000
    if kind == "num" and distinct > 5:
        return tests.wasserstein_stat_test if large else tests.ks_stat_test
    if kind == "cat" and large:
        return tests.jensenshannon_stat_test
    if kind == "cat" and distinct > 2:
        return tests.chi_stat_test
    return None
