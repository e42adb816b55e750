"""Pin of the monitor's speed shortcut past Evidently's report (``domain/stattests.py``).

The module calls functions of ``evidently.legacy`` (not Evidently's public API) that the
``DataDriftPreset`` is built on. When Evidently is upgraded this test fails first:
re-check the module against the new version (``test_monitor_drift.py`` compares the
verdicts with the real report's) and update the pin.
"""

from __future__ import annotations

import evidently
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
