"""The prediction record the scorer queues holds what the request and the answer held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftloop.common.v1 import common_pb2 as common
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import from_record
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit


def scorer(tmp_path: Path, names: list[str], predict: Any) -> tuple[Scorer, FakePredictionLog]:
    predictor = Predictor(
        flavor="sklearn", columns=tuple(Column(n, "double") for n in names), predict=predict
    )
    model = ServedModel(name="m", version=3, run_id="r" * 32, alias="champion", predictor=predictor)
    log = FakePredictionLog()
    settings = ServingSettings(home=tmp_path, models="m")
    return Scorer(settings, FakeServedModels(model), log), log


def expected_inputs(names: list[str], matrix: np.ndarray[Any, Any]) -> list[common.Record]:
    """The inputs built field by field, as the first version of the scorer did."""
    records = []
    for row in matrix.tolist():
        record = common.Record()
        for name, value in zip(names, row, strict=True):
            record.fields[name].double_value = value
        records.append(record)
    return records


@pytest.mark.parametrize(
    "names",
    [
        ["sepal_length", "sepal_width"],
        [f"f{i}" for i in range(20)],
        ["é" * 3, "x" * 200, ""],  # UTF-8, a key longer than 127 bytes, an empty key
    ],
    ids=["two", "twenty", "odd-names"],
)
def test_the_record_holds_every_input_and_output(tmp_path: Path, names: list[str]) -> None:
    matrix = np.random.default_rng(1).normal(size=(3, len(names)))
    matrix[1, 0] = np.nan
    matrix[2, -1] = -0.0
    score, log = scorer(tmp_path, names, lambda m: np.arange(len(m)))
    answer = score.score("m", matrix)
    (record,) = log.records
    event = from_record(record.value, record.headers).data
    assert isinstance(event, serving.PredictionLogged)
    assert event.request_id == answer.request_id
    assert len(answer.request_id) == 32
    assert (event.model.name, event.model.version, event.model.run_id) == ("m", 3, "r" * 32)
    assert event.alias == "champion"
    assert event.route == serving.ROUTE_CHAMPION
    assert [dict(r.fields) for r in event.inputs] == [
        dict(r.fields) for r in expected_inputs(names, matrix)
    ]
    assert [r.fields["prediction"].int64_value for r in event.outputs] == [0, 1, 2]
    assert event.request_time.ToDatetime().year >= 2025


def test_outputs_keep_their_types(tmp_path: Path) -> None:
    score, log = scorer(tmp_path, ["a"], lambda m: np.array([[0.25, 0.75]]))
    score.score("m", np.ones((1, 1)))
    event = from_record(log.records[0].value, log.records[0].headers).data
    assert event.outputs[0].fields["prediction_1"].double_value == 0.75
    score, log = scorer(tmp_path, ["a"], lambda m: np.array(["yes"]))
    score.score("m", np.ones((1, 1)))
    event = from_record(log.records[0].value, log.records[0].headers).data
    assert event.outputs[0].fields["prediction"].string_value == "yes"


def test_feature_times_are_logged_only_for_features_read_from_the_store(
    tmp_path: Path,
) -> None:
    score, log = scorer(tmp_path, ["a", "b"], lambda m: np.zeros(len(m)))
    score.score("m", np.ones((1, 2)))
    score.score(
        "m",
        np.ones((2, 2)),
        entities={"flower_id": [7, 8]},
        feature_names=["a", "b"],
        feature_times=[["2026-01-02T03:04:05.5Z", None], ["2026-01-02T03:04:05.5Z", None]],
    )
    inline, keyed = (from_record(r.value, r.headers).data for r in log.records)
    assert len(inline.feature_times) == 0
    assert len(keyed.feature_times) == 2
    for row in keyed.feature_times:
        assert row.fields["a"].timestamp_value.ToJsonString() == "2026-01-02T03:04:05.500Z"
        assert row.fields["b"].WhichOneof("kind") == "null_value"
