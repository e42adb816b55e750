"""False alarms under control: a correction over a window's columns and a minimum effect
size, both off by default (the decision is then Evidently's own)."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_monitor.domain.drift import ColumnDecision, corrected, decide, make_reference
from driftloop_monitor.domain.policy import MonitorPolicy

pytestmark = pytest.mark.unit


def p_column(name: str, p: float) -> ColumnDecision:
    return ColumnDecision(name, "num", "ks", "K-S p_value", p, 0.05, p < 0.05)


def test_benjamini_hochberg_keeps_a_strong_signal_and_drops_what_many_columns_make_by_chance() -> (
    None
):
    pvalues = [0.001, 0.04, 0.03, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    columns = [p_column(f"x{i}", p) for i, p in enumerate(pvalues)]
    distance = ColumnDecision(
        "colour", "cat", "jensenshannon", "Jensen-Shannon distance", 0.2, 0.1, True
    )
    raw = [*columns, distance]

    assert sum(c.drifted for c in raw) == 4
    found = corrected(raw, MonitorPolicy(multiple_testing="benjamini_hochberg"))

    assert [c.column for c in found if c.drifted] == ["x0", "colour"]
    assert found[0].adjusted_score == pytest.approx(0.001 * 10)
    assert found[-1] == distance  # a distance test is not a p-value: left alone
    assert corrected(raw, MonitorPolicy()) == raw  # off by default


def test_a_minimum_effect_size_ignores_a_significant_but_tiny_shift() -> None:
    rng = np.random.default_rng(7)
    reference = make_reference(pd.DataFrame({"x": rng.normal(0, 1, 5000)}))
    tiny = pd.DataFrame({"x": rng.normal(0.12, 1, 5000)})  # significant at n=5000, d=0.12
    large = pd.DataFrame({"x": rng.normal(1.0, 1, 5000)})

    evidently = decide(reference, tiny, MonitorPolicy(num_method="ks"))
    assert evidently.columns[0].drifted  # Evidently's verdict: drift
    policy = MonitorPolicy(num_method="ks", min_effect_size=0.3)
    quiet = decide(reference, tiny, policy)
    assert not quiet.columns[0].drifted
    assert quiet.columns[0].effect_size == pytest.approx(0.12, abs=0.05)
    assert decide(reference, large, policy).columns[0].drifted


def test_the_effect_of_a_categorical_column_is_the_total_variation_distance() -> None:
    reference = make_reference(pd.DataFrame({"c": ["a"] * 500 + ["b"] * 500}))
    current = pd.DataFrame({"c": ["a"] * 700 + ["b"] * 300})
    decision = decide(reference, current, MonitorPolicy(min_effect_size=0.5))
    (column,) = decision.columns
    assert column.effect_size == pytest.approx(0.2)
    assert not column.drifted
