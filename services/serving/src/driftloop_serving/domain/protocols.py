"""The two request shapes, turned into one 2-D float matrix, and the answers back.

- KServe's V2 Open Inference Protocol: ``inputs`` is either one tensor of shape
  ``[rows, columns]`` or one tensor per column (shape ``[rows]`` or ``[rows, 1]``),
  named after the model's signature columns.
- MLflow's scoring protocol: ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs``.

Features are numbers (the models served take numeric matrices); anything else is
a :class:`BadRequest` naming the problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

V2_NUMERIC = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


class BadRequest(Exception):
    """The request cannot be scored as sent; the message says why."""


Matrix = np.ndarray[Any, Any]


def _numbers(rows: Any, what: str) -> Matrix:
    try:
        matrix = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadRequest(f"{what}: every feature must be a number") from None
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1) if what != "column" else matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise BadRequest(f"{what}: expected rows of features, got {matrix.ndim} dimensions")
    return matrix


def _check_width(matrix: Matrix, columns: Sequence[str]) -> Matrix:
    if columns and matrix.shape[1] != len(columns):
        raise BadRequest(
            f"expected {len(columns)} features per row ({', '.join(columns)}), "
            f"got {matrix.shape[1]}"
        )
    if matrix.shape[0] == 0:
        raise BadRequest("no rows to score")
    return matrix


def _by_name(named: dict[str, Any], columns: Sequence[str], rows: int | None) -> Matrix:
    missing = [c for c in columns if c not in named]
    if missing:
        raise BadRequest(f"missing feature(s): {', '.join(missing)}")
    unknown = sorted(set(named) - set(columns))
    if unknown:
        raise BadRequest(f"unknown feature(s): {', '.join(unknown)}")
    parts = [_numbers(named[c], "column").reshape(-1) for c in columns]
    lengths = {len(p) for p in parts}
    if len(lengths) != 1 or (rows is not None and lengths != {rows}):
        raise BadRequest("every feature must have the same number of rows")
    return np.column_stack(parts)


# -- V2 --------------------------------------------------------------------------------


def v2_matrix(body: Any, columns: Sequence[str]) -> Matrix:
    """The feature matrix of a V2 ``infer`` request body.

    Raises:
        BadRequest: On a malformed body, a shape that does not match the data, a
            non-numeric datatype, or features the model does not take.
    """
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest("the request needs a non-empty 'inputs' list")
    tensors: list[tuple[str, Matrix]] = []
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{index}] must be an object")
        name = str(tensor.get("name", ""))
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
        if datatype not in V2_NUMERIC:
            raise BadRequest(
                f"input {name!r}: datatype {datatype!r} is not supported "
                f"(use one of {', '.join(V2_NUMERIC)})"
            )
        if not isinstance(data, list):
            raise BadRequest(f"input {name!r}: 'data' must be a list")
        try:
            flat: Matrix = np.asarray(data, dtype=V2_NUMERIC[datatype]).reshape(-1)
        except (TypeError, ValueError):
            raise BadRequest(f"input {name!r}: data is not {datatype}") from None
        if flat.size != math.prod(shape):
            raise BadRequest(
                f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {flat.size}"
            )
        tensors.append((name, flat.astype(np.float64, copy=False).reshape(shape)))
    if len(tensors) == 1 and (len(tensors[0][1].shape) == 2 or not columns):
        matrix = tensors[0][1]
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2:
            raise BadRequest(f"input {tensors[0][0]!r}: expected shape [rows, features]")
        return _check_width(matrix, columns)
    named = {name: tensor.reshape(-1) for name, tensor in tensors}
    return _check_width(_by_name(named, columns, None), columns)


def _v2_datatype(array: Matrix) -> str:
    if array.dtype.kind == "b":
        return "BOOL"
    if array.dtype.kind in "iu":
        return "INT64"
    if array.dtype.kind == "f":
        return "FP64"
    return "BYTES"


def v2_response(
    *, model: str, version: int, request_id: str, predictions: Matrix, route: str
) -> dict[str, Any]:
    """The V2 ``infer`` response; ``parameters`` names the version and route that answered."""
    return {
        "model_name": model,
        "model_version": str(version),
        "id": request_id,
        "parameters": {"route": route},
        "outputs": [
            {
                "name": "predict",
                "shape": list(predictions.shape),
                "datatype": _v2_datatype(predictions),
                "data": predictions.reshape(-1).tolist(),
            }
        ],
    }


# -- MLflow ------------------------------------------------------------------------------


def _dataframe_split(value: Any, columns: Sequence[str]) -> Matrix:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadRequest("'dataframe_split' needs 'columns' and 'data'")
    names = value.get("columns")
    matrix = _numbers(value["data"], "dataframe_split")
    if names is None:
        return _check_width(matrix, columns)
    if not isinstance(names, list) or len(names) != matrix.shape[1]:
        raise BadRequest("'dataframe_split': 'columns' must name every column of 'data'")
    if not columns:
        return matrix
    if len(names) == len(columns) and all(str(n) == c for n, c in zip(names, columns, strict=True)):
        return _check_width(matrix, columns)  # already in the model's order
    named: dict[str, Any] = {str(n): matrix[:, i] for i, n in enumerate(names)}
    return _check_width(_by_name(named, columns, matrix.shape[0]), columns)


def mlflow_matrix(body: Any, columns: Sequence[str]) -> Matrix:
    """The feature matrix of an MLflow ``/invocations`` JSON body.

    Raises:
        BadRequest: On a body with none (or more than one) of the accepted keys,
            or features the model does not take.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    if len(keys) != 1:
        raise BadRequest(
            "the body must have exactly one of 'dataframe_split', 'dataframe_records', "
            f"'instances' or 'inputs' (got {sorted(body)})"
        )
    key, value = keys[0], body[keys[0]]
    if key == "dataframe_split":
        return _dataframe_split(value, columns)
    records = value
    if isinstance(records, dict):  # {"inputs": {"col": [...], ...}}: columns by name
        if not columns:
            raise BadRequest("the model has no signature: send rows, not named columns")
        return _check_width(_by_name(records, columns, None), columns)
    if not isinstance(records, list) or not records:
        raise BadRequest(f"'{key}' must be a non-empty list")
    if all(isinstance(r, dict) for r in records):
        if not columns:
            raise BadRequest("the model has no signature: send rows as lists, not objects")
        named = {c: [r.get(c) for r in records] for c in columns}
        extra = sorted({k for r in records for k in r} - set(columns))
        if extra:
            raise BadRequest(f"unknown feature(s): {', '.join(extra)}")
        if any(v is None for values in named.values() for v in values):
            missing = sorted(c for c, values in named.items() if any(v is None for v in values))
            raise BadRequest(f"missing feature(s): {', '.join(missing)}")
        return _check_width(_by_name(named, columns, len(records)), columns)
    return _check_width(_numbers(records, key), columns)
