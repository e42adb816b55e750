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

A second shortcut (:func:`_with_reference_prepared`): Evidently's two default tests
for large references, the normed Wasserstein distance and the Jensen-Shannon distance
of a categorical column, work the same reference column out again on every window
(sorting its 5,000 values with the window's, counting its categories). Here that part is
done once per reference and the rest of each function is reproduced step by step (the
same arrays, in the same order), so the score is the same float; a 1000 x 20 window's
decision went from 20 to 8 ms of CPU. Every other test runs through Evidently's own
function.

Checked against evidently 0.7.23: ``tests/unit/monitor/test_monitor_stattests.py``
pins that version, and ``tests/unit/monitor/test_monitor_drift.py`` compares the
verdicts with the real report's. Evidently is imported on first use (it takes seconds).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
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
        from scipy.spatial import distance  # type: ignore[import-untyped]
    return {
        "jensenshannon": distance.jensenshannon,
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
        fast = _with_reference_prepared(test, kind)
        if fast is not None:
            limit = test.default_threshold if threshold is None else threshold
            score = fast(_prepared(reference), current)
            return ColumnTest(
                stattest=test.name,
                stattest_display=test.display_name,
                score=float(score),
                threshold=float(limit),
                drifted=bool(score >= limit),
            )
        outcome = test(reference, current, column_type, threshold)
    return ColumnTest(
        stattest=test.name,
        stattest_display=test.display_name,
        score=float(outcome.drift_score),
        threshold=float(outcome.actual_threshold),
        drifted=bool(outcome.drifted),
    )


def _default_by_reference(reference: pd.Series, kind: str) -> Any:
    """The test ``registry._get_default_stattest`` picks, when the reference alone decides
    it; None otherwise (the registry then picks it).

    Evidently counts the distinct values of reference and window together on every call
    (a concatenation of both, a quarter of a decision's time with 20 columns); that count
    is at least the reference's own, so when the reference already has more values than a
    threshold the choice does not depend on the window. Text columns are left to the
    registry.
    """
    distinct = _prepared(reference).distinct
    tests = _evidently()["registry"].stattests
    large = reference.shape[0] > 1000
    if kind == "num" and distinct > 5:
        return tests.wasserstein_stat_test if large else tests.ks_stat_test
    if kind == "cat" and large:
        return tests.jensenshannon_stat_test
    if kind == "cat" and distinct > 2:
        return tests.chi_stat_test
    return None


class _Reference:
    """What the tests work out from a (cleaned) reference column on every window, worked
    out once, when first asked for: its number of distinct values (the default test's
    pick), its values as sorted floats and Evidently's norm (Wasserstein), its distinct
    values as Evidently's set and its counts (Jensen-Shannon)."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series

    @cached_property
    def distinct(self) -> int:
        return int(self.series.nunique())

    @cached_property
    def sorted(self) -> np.ndarray:
        return np.sort(np.asarray(self.series, dtype=float))

    @cached_property
    def norm(self) -> float:
        return max(float(np.std(self.series)), 0.001)

    @cached_property
    def values(self) -> set[Any]:
        return set(self.series.dropna().unique())

    @cached_property
    def counts(self) -> dict[Any, int]:
        return dict(self.series.value_counts())


#: Prepared reference columns, by the identity of the (cached, cleaned) series, which
#: is kept inside so that its id is not reused while it is cached.
_references: dict[int, _Reference] = {}
_REFERENCES_MAX = 1024


def _prepared(reference: pd.Series) -> _Reference:
    found = _references.get(id(reference))
    if found is None or found.series is not reference:
        if len(_references) >= _REFERENCES_MAX:
            _references.clear()
        found = _references[id(reference)] = _Reference(reference)
    return found


def _wasserstein_norm(reference: _Reference, current: pd.Series) -> float:
    """Evidently's ``_wasserstein_distance_norm`` score: scipy's ``_cdf_distance(1, ...)``
    step by step, with the reference sorted once. Every array is the one scipy builds
    (the merged values sorted the same way, the same searches and the same dot
    product), so the score is the same float."""
    u_sorted = reference.sorted
    v_sorted = np.sort(np.asarray(current, dtype=float))
    all_values = np.concatenate((u_sorted, v_sorted))
    all_values.sort(kind="mergesort")
    deltas = np.diff(all_values)
    u_cdf = u_sorted.searchsorted(all_values[:-1], "right") / u_sorted.size
    v_cdf = v_sorted.searchsorted(all_values[:-1], "right") / v_sorted.size
    return float(np.vecdot(np.abs(u_cdf - v_cdf), deltas)) / reference.norm


def _jensenshannon_categorical(reference: _Reference, current: pd.Series) -> float:
    """Evidently's ``_jensenshannon`` score of a categorical column (``get_binned_data``
    without zeroes filled, then scipy's distance), with the reference's distinct values
    and counts worked out once; the bins are in the order Evidently's set gives them."""
    keys = list(reference.values | set(current.dropna().unique()))
    reference_counts = {**dict.fromkeys(keys, 0), **reference.counts}
    current_counts = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
    size, current_size = len(reference.series), len(current)
    reference_percents = np.array([reference_counts[key] / size for key in keys])
    current_percents = np.array([current_counts[key] / current_size for key in keys])
    return float(_evidently()["jensenshannon"](reference_percents, current_percents, None))


def _with_reference_prepared(test: Any, kind: str) -> Any:
    """The shortcut for ``test`` (a function of the prepared reference and the window),
    or None: only Evidently's Wasserstein and its Jensen-Shannon of a categorical
    column have one."""
    tests = _evidently()["registry"].stattests
    if test is tests.wasserstein_stat_test:
        return _wasserstein_norm
    if test is tests.jensenshannon_stat_test and kind == "cat":
        return _jensenshannon_categorical
    return None
