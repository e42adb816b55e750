"""Categorical columns: typed values from prediction records, tested as Evidently tests them.

The window is built the way the monitor builds it (typed ``common.v1.Record`` values read
back by the stream's ``row()``), then decided; Evidently's ``DataDriftPreset`` runs on the
same frames with the same column types, and both must agree on the stattest, the score
and the verdict of every categorical column.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import make_record
from driftloop_monitor.domain.columns import MistypedRow, check_rows
from driftloop_monitor.domain.drift import current_frame, decide, full_report, make_reference
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.service_layer.predictions import MalformedRecord, row
from tests.fakes.monitor import FakeStore, fake_monitor

pytestmark = pytest.mark.unit

PLANS = ["free", "basic", "pro", "team"]


def typed_frame(rows: int, *, seed: int, shifted: bool = False) -> pd.DataFrame:
    """A string column of 4 plans, a boolean, an id-like string column, a number."""
    rng = np.random.default_rng(seed)
    plan_p = [0.55, 0.15, 0.15, 0.15] if shifted else [0.25, 0.25, 0.25, 0.25]
    return pd.DataFrame(
        {
            "plan": rng.choice(PLANS, size=rows, p=plan_p),
            "active": rng.random(rows) < (0.85 if shifted else 0.5),
            # Mostly distinct values: Evidently alone would call this column text.
            "city": [f"c{v}" for v in rng.integers(0, rows * 4 if not shifted else 5, rows)],
            "age": rng.normal(40.0, 10.0, size=rows),
        }
    )


def through_records(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` as the monitor sees it: each row logged as a typed record and read back."""
    records = [make_record(r) for r in data.to_dict("records")]
    rows = [row(record) for record in records]
    return pd.DataFrame.from_records(rows)


def evidently_columns(
    reference: pd.DataFrame, current: pd.DataFrame, categorical: list[str]
) -> dict[str, dict[str, Any]]:
    """Per column: Evidently's method, score and verdict from its own report."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        categorical_columns=categorical,
        numerical_columns=[c for c in reference.columns if c not in categorical],
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    found: dict[str, dict[str, Any]] = {}
    report = snapshot.dict()
    for metric in report["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            found[config["column"]] = {"method": config["method"], "score": metric["value"]}
    for test in report["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            found[params["column"]]["drifted"] = test["status"] == "FAIL"
    return found


@pytest.mark.parametrize(
    ("reference_rows", "shifted", "stattests"),
    [
        (600, False, {"plan": "chisquare", "active": "z", "city": "chisquare"}),
        (600, True, {"plan": "chisquare", "active": "z", "city": "chisquare"}),
        (2000, False, {"plan": "jensenshannon", "active": "jensenshannon"}),
        (2000, True, {"plan": "jensenshannon", "active": "jensenshannon"}),
    ],
    ids=["small-stationary", "small-drifted", "large-stationary", "large-drifted"],
)
def test_categorical_columns_get_evidentlys_stattest_score_and_verdict(
    reference_rows: int, shifted: bool, stattests: dict[str, str]
) -> None:
    # The id-like column only where it is cheap: Evidently's report draws every category.
    kept = [*stattests, "age"]
    reference = typed_frame(reference_rows, seed=1)[kept]
    current = through_records(typed_frame(300, seed=2, shifted=shifted)[kept])
    known = make_reference(reference)

    decision = decide(known, current_frame(current.to_dict("records"), known), MonitorPolicy())
    theirs = evidently_columns(reference, current, list(stattests))

    assert {c: known.column_types[c] for c in stattests} == dict.fromkeys(stattests, "cat")
    mine = {c.column: c for c in decision.columns}
    for column, stattest in stattests.items():
        assert mine[column].stattest == stattest
        assert mine[column].stattest_display == theirs[column]["method"]
        assert mine[column].score == pytest.approx(theirs[column]["score"], rel=1e-6, abs=1e-9)
        assert mine[column].drifted == theirs[column]["drifted"]
    assert mine["plan"].drifted is shifted
    assert mine["active"].drifted is shifted


def test_the_report_lists_categorical_columns_with_their_stattest_and_score() -> None:
    reference = make_reference(typed_frame(600, seed=3))
    current = through_records(typed_frame(300, seed=4, shifted=True))
    decision = decide(reference, current, MonitorPolicy())

    body, html = full_report(reference, current, MonitorPolicy())

    plan = next(c for c in decision.columns if c.column == "plan")
    assert plan.as_dict()["column_type"] == "cat"
    assert plan.as_dict()["stattest"] == "chisquare"
    methods = {
        m["config"]["column"]: (m["config"]["method"], m["value"])
        for m in json.loads(body)["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    assert methods["plan"][0] == plan.stattest_display
    assert methods["plan"][1] == pytest.approx(plan.score, rel=1e-6, abs=1e-9)
    assert "plan" in html


def test_a_value_of_another_kind_than_its_column_is_refused_naming_row_and_column() -> None:
    kinds = make_reference(typed_frame(100, seed=5)).value_kinds
    good = [{"plan": "pro", "active": True, "city": "c1", "age": 31}]

    check_rows(good, kinds)
    with pytest.raises(MistypedRow, match=r"input row 1: column 'plan' holds string values"):
        check_rows([*good, {"plan": 3.0, "active": True, "city": "c1", "age": 30.0}], kinds)
    with pytest.raises(MistypedRow, match="column 'age' holds number values, not str"):
        check_rows([{"plan": "pro", "active": False, "city": "c", "age": "old"}], kinds)
    assert kinds == {"plan": "string", "active": "bool", "city": "string", "age": "number"}


def test_rows_of_versions_whose_columns_differ_in_kind_are_each_checked_by_their_own() -> None:
    # Predictions of several versions interleave; each version's kinds are one object.
    numbers = {"plan": "number", "age": "number"}
    strings = {"plan": "string", "age": "number"}
    by_number, by_string = [{"plan": 3.0, "age": 31}], [{"plan": "pro", "age": 31}]

    for _ in range(3):
        check_rows(by_number, numbers)
        check_rows(by_string, strings)
        with pytest.raises(MistypedRow, match="column 'plan' holds number values, not str"):
            check_rows(by_string, numbers)
        with pytest.raises(MistypedRow, match="column 'plan' holds string values, not float"):
            check_rows(by_number, strings)


def test_a_legacy_double_zero_or_one_in_a_boolean_column_is_read_as_a_boolean() -> None:
    rows: list[dict[str, Any]] = [{"active": 1.0}, {"active": 0.0}, {"active": None}]
    check_rows(rows, {"active": "bool"})
    assert [r["active"] for r in rows] == [True, False, None]
    with pytest.raises(MistypedRow):
        check_rows([{"active": 2.0}], {"active": "bool"})


async def test_a_mistyped_prediction_is_malformed_and_adds_no_row_to_its_window() -> None:
    store = FakeStore()
    store.references[("shop", 1)] = make_reference(typed_frame(200, seed=6))
    monitor = fake_monitor(store=store, window_rows=50)

    def logged(plan: Any) -> CloudEvent[serving.PredictionLogged]:
        inputs = {"plan": plan, "active": True, "city": "c1", "age": 30.5}
        return CloudEvent.new(
            serving.PredictionLogged(
                request_id="r",
                model=ModelRef(name="shop", version=1),
                inputs=[make_record(inputs)],
                outputs=[make_record({"prediction": "yes"})],
            )
        )

    await monitor.windows.on_prediction(logged("pro"))
    with pytest.raises(MalformedRecord, match="column 'plan' holds string values, not float"):
        await monitor.windows.on_prediction(logged(7.0))
    await monitor.windows.on_prediction(logged("team"))

    assert monitor.open_windows() == {"shop/1": 2}
