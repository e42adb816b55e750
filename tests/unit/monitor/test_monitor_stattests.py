"""Pin of the monitor's speed shortcut past Evidently's report (``domain/stattests.py``).

The module calls functions of ``evidently.legacy`` (not Evidently's public API) that the
``DataDriftPreset`` is built on. When Evidently is upgraded this test fails first:
re-check the module against the new version (``test_monitor_drift.py`` compares the
verdicts with the real report's) and update the pin.
"""

from __future__ import annotations

from typing import Any

import evidently
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_monitor.domain import stattests
from driftloop_monitor.domain.policy import MonitorPolicy

from .data import frame

pytestmark = pytest.mark.unit


def test_the_stattest_shortcut_was_checked_against_this_evidently() -> None:
    assert evidently.__version__ == stattests.CHECKED_AGAINST, (
        "re-check driftloop_monitor/domain/stattests.py against the new evidently "
        "and update this pin"
    )


def test_the_evidently_internals_the_shortcut_calls_are_where_it_expects_them() -> None:
    reference, current = frame(300, seed=1), frame(300, seed=2, shifted=["x0"])
    options = stattests.options(MonitorPolicy())

    test = stattests.run_test("x0", "num", reference["x0"], current["x0"], options)

    assert stattests.infer_column_type(reference["x0"]) == "num"
    assert stattests.infer_column_type(reference["colour"]) == "cat"
    assert test.stattest == "ks"
    assert test.drifted
    assert 0.0 <= test.score < test.threshold


_MANY = [float(v) for v in range(7)]


@pytest.mark.parametrize("reference_rows", [300, 3000])
@pytest.mark.parametrize(
    ("kind", "reference_values", "window_values"),
    [
        ("num", None, None),  # continuous
        ("num", _MANY, _MANY),  # more than 5 values in the reference
        ("num", [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]),  # few: reference and window decide
        ("num", [0.0, 1.0, 2.0], _MANY),
        ("cat", ["a", "b", "c", "d"], ["a", "b", "c", "d"]),
        ("cat", ["a", "b"], ["a", "b"]),
        ("cat", ["a", "b"], ["a", "b", "c"]),
    ],
)
def test_the_test_a_column_gets_is_the_one_evidentlys_registry_picks(
    reference_rows: int,
    kind: str,
    reference_values: list[Any] | None,
    window_values: list[Any] | None,
) -> None:
    from evidently.legacy.calculations.stattests import registry
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(7)
    if reference_values is None or window_values is None:
        reference = pd.Series(rng.normal(size=reference_rows))
        current = pd.Series(rng.normal(size=200))
    else:
        reference = pd.Series(rng.choice(reference_values, size=reference_rows))
        current = pd.Series(rng.choice(window_values, size=200))

    test = stattests.run_test("x", kind, reference, current, stattests.options(MonitorPolicy()))

    picked = registry.get_stattest(reference, current, ColumnType(kind), None)
    assert test.stattest == picked.name


def _numeric_cases() -> list[tuple[str, pd.Series, pd.Series]]:
    rng = np.random.default_rng(11)
    return [
        ("same", pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(size=1000))),
        ("shifted", pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(0.4, size=1000))),
        (
            "ties",
            pd.Series(rng.integers(0, 40, size=3000).astype(float)),
            pd.Series(rng.integers(5, 45, size=700)),
        ),
        ("tiny variance", pd.Series(1.0 + rng.normal(size=2000) * 1e-6), pd.Series([1.0] * 300)),
        ("wider", pd.Series(rng.normal(size=1500)), pd.Series(rng.normal(0, 3, size=1))),
    ]


@pytest.mark.parametrize(("case", "reference", "current"), _numeric_cases())
def test_the_wasserstein_shortcut_gives_evidentlys_score_to_the_last_bit(
    case: str, reference: pd.Series, current: pd.Series
) -> None:
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
        _wasserstein_distance_norm,
    )
    from evidently.legacy.core import ColumnType

    expected, drifted = _wasserstein_distance_norm(reference, current, ColumnType.Numerical, 0.1)
    test = stattests.run_test("x", "num", reference, current, stattests.options(MonitorPolicy()))

    assert test.stattest == "wasserstein", case
    assert test.score == float(expected), case
    assert test.drifted == bool(drifted), case
    # Again, with the reference prepared: still the same.
    again = stattests.run_test("x", "num", reference, current, stattests.options(MonitorPolicy()))
    assert again.score == float(expected), case


def _categorical_cases() -> list[tuple[str, pd.Series, pd.Series]]:
    rng = np.random.default_rng(12)
    colours = ["red", "green", "blue", "amber"]
    return [
        ("same", pd.Series(rng.choice(colours, 3000)), pd.Series(rng.choice(colours, 500))),
        (
            "moved",
            pd.Series(rng.choice(colours, 3000)),
            pd.Series(rng.choice(colours, 500, p=[0.7, 0.1, 0.1, 0.1])),
        ),
        (
            "only in the window",
            pd.Series(rng.choice(colours[:3], 3000)),
            pd.Series(rng.choice([*colours, "violet"], 500)),
        ),
        (
            "only in the reference",
            pd.Series(rng.choice(colours, 3000)),
            pd.Series(rng.choice(colours[:2], 500)),
        ),
    ]


@pytest.mark.parametrize(("case", "reference", "current"), _categorical_cases())
def test_the_jensen_shannon_shortcut_gives_evidentlys_score_to_the_last_bit(
    case: str, reference: pd.Series, current: pd.Series
) -> None:
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.core import ColumnType

    expected, drifted = _jensenshannon(reference, current, ColumnType.Categorical, 0.1)
    test = stattests.run_test("x", "cat", reference, current, stattests.options(MonitorPolicy()))

    assert test.stattest == "jensenshannon", case
    assert test.score == float(expected), case
    assert test.drifted == bool(drifted), case
