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
