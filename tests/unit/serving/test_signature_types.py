"""Requests typed by the model's signature, on both protocols, and the typed record logged."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import from_record
from driftloop_events.values import record_to_dict
from driftloop_kit.errors import InvalidInput
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.domain.protocols import (
    BadRequest,
    InputMismatch,
    mlflow_batch,
    mlflow_matrix,
    mlflow_predict_method,
    v2_batch,
    v2_matrix,
    v2_outputs,
    v2_response,
)
from driftloop_serving.domain.signature import Batch, needs_types, signature_columns
from driftloop_serving.service_layer.scoring import ModelRefused, Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit

COLUMNS = (
    Column("city", "string"),
    Column("age", "long"),
    Column("score", "double"),
    Column("member", "boolean"),
    Column("seen", "datetime"),
    Column("note", "string", required=False),
)


def v2_body(**overrides: Any) -> dict[str, Any]:
    tensors: dict[str, dict[str, Any]] = {
        "city": {"datatype": "BYTES", "data": ["Lyon", "Oslo"]},
        "age": {"datatype": "INT64", "data": [31, 45]},
        "score": {"datatype": "FP64", "data": [0.5, 2]},
        "member": {"datatype": "BOOL", "data": [True, False]},
        "seen": {"datatype": "BYTES", "data": ["2025-03-01T12:00:00Z", "2025-03-02"]},
        "note": {"datatype": "BYTES", "data": ["hi", None]},
    }
    for name, tensor in overrides.items():
        if tensor is None:
            tensors.pop(name)
        else:
            tensors[name] = tensor
    return {
        "inputs": [{"name": name, "shape": [len(t["data"])], **t} for name, t in tensors.items()]
    }


def test_the_signature_reads_column_types_requiredness_and_tensors() -> None:
    mlmodel = {
        "signature": {
            "inputs": json.dumps(
                [
                    {"type": "string", "name": "city", "required": True},
                    {"type": "long", "name": "age", "required": False},
                ]
            )
        }
    }
    tensors = {
        "signature": {
            "inputs": json.dumps(
                [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1, 3]}}]
            )
        }
    }

    assert signature_columns(mlmodel) == (
        Column("city", "string"),
        Column("age", "long", required=False),
    )
    assert signature_columns(tensors) == (Column("", "int64", shape=(-1, 3)),)
    assert needs_types(signature_columns(mlmodel))
    assert not needs_types([Column("a", "double"), Column("b", "float")])


def test_a_v2_request_becomes_columns_of_the_signatures_types() -> None:
    batch = v2_batch(v2_body(), COLUMNS)

    assert batch.rows == 2
    assert list(batch.columns) == [c.name for c in COLUMNS]
    assert batch.columns["city"].tolist() == ["Lyon", "Oslo"]
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["score"].tolist() == [0.5, 2.0]
    assert batch.columns["member"].dtype == np.bool_
    assert batch.columns["seen"].dtype == np.dtype("datetime64[ns]")
    assert str(batch.columns["seen"][0]) == "2025-03-01T12:00:00.000000000"
    assert batch.columns["note"].tolist() == ["hi", None]


def test_one_v2_tensor_of_rows_is_split_into_the_signatures_columns() -> None:
    columns = (Column("city", "string"), Column("zone", "string"))
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 2],
                "datatype": "BYTES",
                "parameters": {"content_type": "str"},
                "data": [["Lyon", "a"], ["Oslo", "b"]],
            }
        ]
    }

    batch = v2_batch(body, columns)

    assert batch.columns["city"].tolist() == ["Lyon", "Oslo"]
    assert batch.columns["zone"].tolist() == ["a", "b"]


def test_a_binary_column_takes_base64_when_the_content_type_says_so() -> None:
    columns = (Column("blob", "binary"),)
    body = {
        "inputs": [
            {
                "name": "blob",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(b"\x00\xff").decode()],
            }
        ]
    }

    assert v2_batch(body, columns).columns["blob"].tolist() == [b"\x00\xff"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"age": {"datatype": "INT64", "data": [31, 4.5]}},
            "column 'age', row 1: 4.5 is not a long",
        ),
        ({"age": {"datatype": "BYTES", "data": ["31", "45"]}}, "column 'age' is long"),
        ({"city": {"datatype": "INT64", "data": [1, 2]}}, "column 'city' is string"),
        ({"city": {"datatype": "BYTES", "data": ["Lyon", None]}}, "column 'city', row 1: null"),
        ({"seen": {"datatype": "BYTES", "data": ["soon", "2025-03-02"]}}, "column 'seen', row 0"),
        ({"member": {"datatype": "BOOL", "data": [True, 2]}}, "column 'member', row 1"),
        ({"city": None}, "missing column(s) 'city'"),
        ({"height": {"datatype": "FP64", "data": [1.8, 1.7]}}, "unknown column(s) 'height'"),
        ({"score": {"datatype": "FP64", "data": [1.0]}}, "same number of rows"),
    ],
    ids=[
        "fraction-in-long",
        "bytes-for-long",
        "int-for-string",
        "null-in-required",
        "not-a-datetime",
        "not-a-bool",
        "missing",
        "extra",
        "ragged",
    ],
)
def test_a_v2_request_that_does_not_fit_names_the_column_and_row(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputMismatch) as raised:
        v2_batch(v2_body(**overrides), COLUMNS)
    assert message in str(raised.value)


def test_a_null_in_an_optional_column_stays_a_null() -> None:
    columns = (Column("age", "long", required=False), Column("city", "string"))
    batch = mlflow_batch(
        {"dataframe_records": [{"age": 3, "city": "Lyon"}, {"city": "Oslo"}]}, columns
    )

    assert batch.columns["age"].dtype == np.float64  # an integer column with a null, as pandas
    assert batch.columns["age"][0] == 3
    assert np.isnan(batch.columns["age"][1])


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["age", "city"], "data": [[31, "Lyon"], [45, "Oslo"]]}},
        {"dataframe_split": {"data": [["Lyon", 31], ["Oslo", 45]]}},
        {"dataframe_records": [{"city": "Lyon", "age": 31}, {"city": "Oslo", "age": 45}]},
        {"instances": [{"city": "Lyon", "age": 31}, {"city": "Oslo", "age": 45}]},
        {"inputs": {"city": ["Lyon", "Oslo"], "age": [31, 45]}},
        {"inputs": [["Lyon", 31], ["Oslo", 45]]},
    ],
    ids=["split", "split-unnamed", "records", "instances", "inputs-columns", "inputs-rows"],
)
def test_every_mlflow_body_gives_the_same_typed_columns(body: dict[str, Any]) -> None:
    columns = (Column("city", "string"), Column("age", "long"))

    batch = mlflow_batch(body, columns)

    assert batch.columns["city"].tolist() == ["Lyon", "Oslo"]
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["age"].tolist() == [31, 45]


def test_csv_cells_are_parsed_by_the_signature_and_an_empty_one_is_a_null() -> None:
    columns = (Column("city", "string"), Column("age", "integer"), Column("ok", "boolean"))
    split = {"columns": ["city", "age", "ok"], "data": [["007", "31", "true"], ["", "4", "0"]]}
    typed = mlflow_batch(
        {"dataframe_split": split},
        (*columns[1:], Column("city", "string", required=False)),
        text=True,
    )

    assert typed.columns["city"].tolist() == ["007", None]  # a string stays a string
    assert typed.columns["age"].dtype == np.int32
    assert typed.columns["ok"].tolist() == [True, False]
    with pytest.raises(InputMismatch, match="column 'city', row 1: null"):
        mlflow_batch({"dataframe_split": split}, columns, text=True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_records": [{"city": "Lyon", "age": "old"}]}, "column 'age', row 0: 'old'"),
        ({"dataframe_records": [{"city": 7, "age": 1}]}, "column 'city', row 0: 7 is not a string"),
        ({"dataframe_records": [{"city": "Lyon"}]}, "missing column(s) 'age'"),
        ({"dataframe_records": [{"city": "Lyon", "age": 1, "x": 2}]}, "unknown column(s) 'x'"),
        ({"dataframe_records": [{"city": "Lyon", "age": 1}, {"age": 2}]}, "'city', row 1: null"),
        ({"dataframe_split": {"data": [["Lyon"]]}}, "row 0: 1 values for 2 columns"),
        ({"inputs": {"city": ["a"], "age": [2**40]}}, "column 'age', row 0"),
    ],
    ids=["not-a-number", "not-a-string", "missing", "extra", "null", "short-row", "overflow"],
)
def test_an_mlflow_body_that_does_not_fit_names_the_column_and_row(
    body: dict[str, Any], message: str
) -> None:
    columns = (Column("city", "string"), Column("age", "integer"))
    with pytest.raises(InputMismatch) as raised:
        mlflow_batch(body, columns)
    assert message in str(raised.value)


def test_a_tensor_signature_takes_its_dtype_and_shape() -> None:
    columns = (Column("", "int64", shape=(-1, 2)),)

    batch = mlflow_batch({"inputs": [[1, 2], [3, 4]]}, columns)
    v2 = v2_batch(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]},
        columns,
    )

    assert batch.tensor
    assert batch.columns[""].dtype == np.int64
    assert batch.columns[""].tolist() == v2.columns[""].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(InputMismatch, match="row 1: 'x' is not int64"):
        mlflow_batch({"inputs": [[1, 2], [3, "x"]]}, columns)
    with pytest.raises(InputMismatch, match="does not match the signature's"):
        mlflow_batch({"inputs": [[1, 2, 3]]}, columns)


def test_the_float_path_names_the_column_and_row_of_a_value_that_is_no_number() -> None:
    with pytest.raises(InputMismatch, match="column 'b', row 1: 'x' is not a number"):
        mlflow_matrix({"instances": [[1, 2], [3, "x"]]}, ["a", "b"])
    with pytest.raises(InputMismatch, match="column 'b', row 1: 'x' is not FP64"):
        v2_matrix(
            {
                "inputs": [
                    {"name": "i", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, "x"]}
                ]
            },
            ["a", "b"],
        )


def test_requested_outputs_and_the_predict_method() -> None:
    assert v2_outputs({"inputs": []}) == ("predict",)
    assert v2_outputs({"outputs": [{"name": "predict_proba"}]}) == ("predict_proba",)
    assert mlflow_predict_method({"predict_method": "predict_proba"}) == "predict_proba"
    with pytest.raises(BadRequest, match="unknown output"):
        v2_outputs({"outputs": [{"name": "embedding"}]})
    with pytest.raises(BadRequest, match="predict_method"):
        mlflow_predict_method({"predict_method": "transform"})


def test_string_answers_are_v2_bytes_and_probabilities_fp64() -> None:
    answer, _ = v2_response(
        model="m",
        version=1,
        request_id="r",
        predictions=np.array(["yes", "no"], dtype=object),
        route="champion",
        probabilities=np.array([[0.2, 0.8], [0.9, 0.1]]),
        outputs=("predict", "predict_proba"),
    )

    label, proba = answer["outputs"]
    assert label == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "parameters": {"content_type": "str"},
        "data": ["yes", "no"],
    }
    assert proba["datatype"] == "FP64"
    assert proba["shape"] == [2, 2]


# -- the scorer ---------------------------------------------------------------------------


class Labeller:
    """A fake typed model: a label from the city and age; probabilities if asked."""

    def __init__(self) -> None:
        self.seen: list[Batch] = []

    def predict(self, batch: Batch) -> Any:
        self.seen.append(batch)
        ages = batch.columns["age"]
        if (ages < 0).any():
            raise ValueError("ages are never negative")
        return np.array(
            [
                f"{c}-{'old' if a > 40 else 'young'}"
                for c, a in zip(batch.columns["city"], ages, strict=True)
            ]
        )

    def predict_proba(self, batch: Batch) -> Any:
        return np.tile([0.25, 0.75], (batch.rows, 1))


def typed_scorer(
    tmp_path: Path, *, proba: bool = True
) -> tuple[Scorer, FakePredictionLog, Labeller]:
    model = Labeller()
    predictor = Predictor(
        flavor="python_function",
        columns=COLUMNS,
        predict=model.predict,
        loader="mlflow.pyfunc",
        typed=True,
        predict_proba=model.predict_proba if proba else None,
    )
    served = ServedModel(
        name="m", version=2, run_id="r" * 32, alias="champion", predictor=predictor
    )
    log = FakePredictionLog()
    return (
        Scorer(ServingSettings(home=tmp_path, models="m"), FakeServedModels(served), log),
        log,
        model,
    )


def test_the_record_of_a_typed_request_carries_typed_values(tmp_path: Path) -> None:
    scorer, log, _ = typed_scorer(tmp_path)

    answer = scorer.score("m", v2_batch(v2_body(), COLUMNS), probabilities=True)

    assert answer.predictions.tolist() == ["Lyon-young", "Oslo-old"]
    assert answer.probabilities is not None
    assert answer.probabilities.tolist() == [[0.25, 0.75], [0.25, 0.75]]
    (record,) = log.records
    event = from_record(record.value, record.headers).data
    assert isinstance(event, serving.PredictionLogged)
    first, second = (record_to_dict(r) for r in event.inputs)
    assert first == {
        "city": "Lyon",
        "age": 31,
        "score": 0.5,
        "member": True,
        "seen": datetime(2025, 3, 1, 12, tzinfo=UTC),
        "note": "hi",
    }
    assert second["note"] is None
    assert event.inputs[0].fields["age"].WhichOneof("kind") == "int64_value"
    assert [record_to_dict(o) for o in event.outputs] == [
        {"prediction": "Lyon-young"},
        {"prediction": "Oslo-old"},
    ]


def test_a_model_that_refuses_the_input_is_a_400_and_nothing_is_logged(tmp_path: Path) -> None:
    scorer, log, _ = typed_scorer(tmp_path)
    batch = v2_batch(v2_body(age={"datatype": "INT64", "data": [-1, 3]}), COLUMNS)

    with pytest.raises(ModelRefused, match="ages are never negative") as raised:
        scorer.score("m", batch)

    assert raised.value.status_code == 400
    assert log.records == []


def test_probabilities_asked_of_a_model_without_predict_proba_are_a_400(tmp_path: Path) -> None:
    scorer, log, _ = typed_scorer(tmp_path, proba=False)

    with pytest.raises(InvalidInput, match="offers no predict_proba"):
        scorer.score("m", v2_batch(v2_body(), COLUMNS), probabilities=True)
    assert log.records == []


def test_a_null_the_float_path_cannot_score_is_named_by_column_and_row(tmp_path: Path) -> None:
    def refuses_nan(matrix: Any) -> Any:
        if np.isnan(matrix).any():
            raise ValueError("Input X contains NaN.")
        return matrix[:, 0]

    predictor = Predictor(
        flavor="sklearn",
        columns=(Column("a", "double"), Column("b", "double")),
        predict=refuses_nan,
    )
    served = ServedModel(name="m", version=1, run_id="r", alias="champion", predictor=predictor)
    log = FakePredictionLog()
    scorer = Scorer(ServingSettings(home=tmp_path, models="m"), FakeServedModels(served), log)
    matrix = v2_matrix(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, None]}]},
        ["a", "b"],
    )

    with pytest.raises(InvalidInput, match="column 'b', row 1: null"):
        scorer.score("m", matrix)
    assert log.records == []
