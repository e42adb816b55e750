"""Requests with entity keys: when a body is read as keys; the matrix built from Feast's answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_serving.domain.entities import (
    BadFeatureAnswer,
    UnknownEntity,
    UnusableFeatures,
    feature_matrix,
    mlflow_entities,
    requested_source,
    v2_entities,
)
from driftloop_serving.domain.protocols import BadRequest

pytestmark = pytest.mark.unit

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def tensor(
    name: str, data: list[Any], shape: list[int] | None = None, datatype: str = "INT64"
) -> dict[str, Any]:
    return {"name": name, "shape": shape or [len(data)], "datatype": datatype, "data": data}


# -- which requests carry entity keys -----------------------------------------------------


def test_a_v2_tensor_named_after_no_model_column_is_read_as_entity_keys() -> None:
    body = {"inputs": [tensor("flower_id", [1, 2])]}
    assert v2_entities(body, COLUMNS, named=False) == {"flower_id": [1, 2]}


def test_v2_keys_of_shape_rows_by_one_and_several_join_keys_are_read_in_row_order() -> None:
    body = {
        "inputs": [
            tensor("flower_id", [[1], [2]], shape=[2, 1]),
            tensor("site", ["a", "b"], datatype="BYTES"),
        ]
    }
    assert v2_entities(body, COLUMNS, named=False) == {"flower_id": [1, 2], "site": ["a", "b"]}


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [tensor("input-0", [0.1] * 8, shape=[2, 4], datatype="FP64")]},
        {"inputs": [tensor(c, [1.0], datatype="FP64") for c in COLUMNS]},
        {"inputs": [tensor("sepal_length", [1.0], datatype="FP64"), tensor("flower_id", [1])]},
        {"inputs": []},
        [],
    ],
    ids=["matrix", "named-features", "mixed", "empty", "not-an-object"],
)
def test_v2_features_are_left_to_the_feature_path(body: Any) -> None:
    assert v2_entities(body, COLUMNS, named=False) is None


def test_a_model_without_signature_takes_keys_only_when_the_request_names_its_service() -> None:
    body = {"inputs": [tensor("flower_id", [7])]}
    assert v2_entities(body, [], named=False) is None
    assert v2_entities(body, [], named=True) == {"flower_id": [7]}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("sepal_length", [1.0], datatype="FP64")], "a feature of the model"),
        ([tensor("flower_id", [1.5])], "not INT64"),
        ([tensor("flower_id", [1, 2], shape=[3])], "needs 3 values"),
        ([tensor("flower_id", [1, 2], shape=[1, 2])], "[rows] or [rows, 1]"),
        ([tensor("flower_id", [1]), tensor("site", ["a", "b"], datatype="BYTES")], "same number"),
        ([tensor("flower_id", [None])], "null"),
        ([tensor("site", [1], datatype="BYTES")], "must be strings"),
        ([tensor("", [1])], "needs a 'name'"),
        ([tensor("flower_id", [1], datatype="STRING")], "not supported"),
    ],
)
def test_malformed_v2_keys_are_bad_requests_naming_the_problem(
    inputs: list[Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[")):
        v2_entities({"inputs": inputs}, COLUMNS, named=True)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_records": [{"flower_id": 1}, {"flower_id": 2}]},
        {"dataframe_split": {"columns": ["flower_id"], "data": [[1], [2]]}},
        {"inputs": {"flower_id": [1, 2]}},
        {"instances": [{"flower_id": 1}, {"flower_id": 2}]},
    ],
    ids=["records", "split", "columns", "instances"],
)
def test_mlflow_bodies_whose_columns_are_keys_only_are_read_as_entity_keys(body: Any) -> None:
    assert mlflow_entities(body, COLUMNS, named=False) == {"flower_id": [1, 2]}


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_records": [dict.fromkeys(COLUMNS, 1.0)]},
        {"dataframe_split": {"columns": COLUMNS, "data": [[1.0] * 4]}},
        {"instances": [[1.0] * 4]},
        {"dataframe_records": [], "instances": []},
    ],
    ids=["records", "split", "rows", "two-keys"],
)
def test_mlflow_features_are_left_to_the_feature_path(body: Any) -> None:
    assert mlflow_entities(body, COLUMNS, named=False) is None


def test_mlflow_keys_must_be_named_and_complete() -> None:
    with pytest.raises(BadRequest, match="name the entity keys"):
        mlflow_entities({"instances": [[1]]}, COLUMNS, named=True)
    with pytest.raises(BadRequest, match=r"\[1\]: entity key 'site' is missing"):
        mlflow_entities(
            {"dataframe_records": [{"flower_id": 1, "site": "a"}, {"flower_id": 2}]},
            COLUMNS,
            named=True,
        )


def test_the_requested_feature_service_must_be_a_name() -> None:
    assert requested_source(None, "parameters") is None
    assert requested_source({"other": 1}, "parameters") is None
    assert requested_source({"feature_service": "fs"}, "params") == "fs"
    with pytest.raises(BadRequest, match="'params' must be an object"):
        requested_source([1], "params")
    with pytest.raises(BadRequest, match="feature service name"):
        requested_source({"feature_service": 3}, "parameters")


# -- the matrix from feast serve's answer ---------------------------------------------------


def answer(
    features: dict[str, list[Any]], statuses: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """A ``/get-online-features`` body, every value PRESENT unless ``statuses`` says."""
    statuses = statuses or {}
    return {
        "metadata": {"feature_names": list(features)},
        "results": [
            {"values": values, "statuses": statuses.get(name, ["PRESENT"] * len(values))}
            for name, values in features.items()
        ],
    }


def test_features_come_back_in_the_signature_order_whatever_the_answer_order() -> None:
    body = answer(
        {
            "flower_id": [1, 2],
            "iris__petal_width": [0.2, 1.8],
            "iris__sepal_length": [5.1, 6.3],
            "iris__petal_length": [1.4, 5.0],
            "iris__sepal_width": [3.5, 2.9],
        }
    )
    matrix, names, _ = feature_matrix(
        body, columns=COLUMNS, entities={"flower_id": [1, 2]}, source="fs"
    )
    assert names == tuple(COLUMNS)
    assert matrix.tolist() == [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.0, 1.8]]
    assert matrix.dtype == np.float64


def test_a_column_given_by_two_views_must_be_named_in_full() -> None:
    body = answer({"flower_id": [1], "a__x": [1.0], "b__x": [2.0]})
    entities = {"flower_id": [1]}
    matrix, _, _ = feature_matrix(body, columns=["b__x"], entities=entities, source="fs")
    assert matrix.tolist() == [[2.0]]
    with pytest.raises(InvalidInput, match="'x' is ambiguous in feature service 'fs'"):
        feature_matrix(body, columns=["x"], entities=entities, source="fs")
    with pytest.raises(InvalidInput, match="'y' is not given by"):
        feature_matrix(body, columns=["y"], entities=entities, source="fs")


def test_without_a_signature_every_feature_is_used_in_the_answer_order() -> None:
    body = answer({"flower_id": [1], "iris__b": [2.0], "iris__a": [1.0]})
    matrix, names, _ = feature_matrix(body, columns=[], entities={"flower_id": [1]}, source=["x:y"])
    assert names == ("b", "a")
    assert matrix.tolist() == [[2.0, 1.0]]


def test_each_row_keeps_its_features_event_times_in_the_matrix_order() -> None:
    body = answer({"flower_id": [1, 2], "iris__b": [2.0, 4.0], "iris__a": [1.0, 3.0]})
    body["results"][1]["event_timestamps"] = ["2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z"]
    body["results"][2]["event_timestamps"] = ["2026-01-01T00:00:00.500Z", "2026-01-01T00:00:01Z"]

    found = feature_matrix(body, columns=["a", "b"], entities={"flower_id": [1, 2]}, source="fs")

    assert found.times == [
        ["2026-01-01T00:00:00.500Z", "2026-01-02T03:04:05Z"],
        ["2026-01-01T00:00:01Z", "2026-01-02T03:04:06Z"],
    ]
    assert found.times_by_name()[1] == {"a": "2026-01-01T00:00:01Z", "b": "2026-01-02T03:04:06Z"}


def test_a_feature_not_present_or_an_answer_without_event_times_has_null_times() -> None:
    # Feast leaves event_timestamps out of some answers; a status other than PRESENT
    # (here INVALID, with a value) means the store held no fresh value: no time.
    body = answer(
        {"flower_id": [1, 2], "iris__a": [1.0, 3.0], "iris__b": [2.0, 4.0]},
        {"iris__a": ["PRESENT", "INVALID"]},
    )
    body["results"][1]["event_timestamps"] = ["2026-01-02T03:04:05Z", "1970-01-01T00:00:00Z"]

    found = feature_matrix(body, columns=["a", "b"], entities={"flower_id": [1, 2]}, source="fs")

    assert found.times == [["2026-01-02T03:04:05Z", None], [None, None]]


def test_entities_without_fresh_features_are_404_naming_each_of_them() -> None:
    body = answer(
        {"flower_id": [1, 2, 3], "iris__sepal_length": [5.0, None, None]},
        {"iris__sepal_length": ["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"]},
    )
    with pytest.raises(UnknownEntity) as raised:
        feature_matrix(
            body, columns=["sepal_length"], entities={"flower_id": [1, 2, 3]}, source="fs"
        )
    assert raised.value.status_code == 404
    assert "NOT_FOUND) for flower_id=2" in raised.value.message
    assert "OUTSIDE_MAX_AGE) for flower_id=3" in raised.value.message
    assert "flower_id=1" not in raised.value.message


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (None, "NULL_VALUE", "is null"),
        (None, "PRESENT", "is null"),
        (float("nan"), "PRESENT", "not finite"),
        ("north", "PRESENT", "not a number: 'north'"),
    ],
)
def test_unusable_values_are_422_naming_feature_and_entity(
    value: Any, status: str, message: str
) -> None:
    body = answer({"flower_id": ["f-1"], "iris__site": [value]}, {"iris__site": [status]})
    with pytest.raises(UnusableFeatures, match=message) as raised:
        feature_matrix(body, columns=["site"], entities={"flower_id": ["f-1"]}, source="fs")
    assert raised.value.status_code == 422
    assert "'site' of flower_id='f-1'" in raised.value.message


@pytest.mark.parametrize(
    "body",
    [{}, {"metadata": {"feature_names": ["a"]}, "results": []}, answer({"iris__a": [1.0, 2.0]})],
    ids=["empty", "lengths", "rows"],
)
def test_an_answer_that_is_not_feast_serves_json_is_502(body: Any) -> None:
    with pytest.raises(BadFeatureAnswer) as raised:
        feature_matrix(body, columns=["a"], entities={"flower_id": [1]}, source="fs")
    assert raised.value.status_code == 502
