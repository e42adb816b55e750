"""The two request shapes, turned into the model's inputs, and the answers back.

- KServe's V2 Open Inference Protocol: ``inputs`` is either one tensor of shape
  ``[rows, columns]`` or one tensor per column (shape ``[rows]`` or ``[rows, 1]``),
  named after the model's signature columns. A ``BYTES`` tensor carries strings
  (``parameters.content_type`` ``"str"``, KServe's default for JSON) or base64
  (``"base64"``, for a ``binary`` column).
- MLflow's scoring protocol: ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs`` (and CSV, read by the router as ``dataframe_split``).

A model whose signature columns are all floating point (or that has none) takes one
2-D float matrix (:func:`v2_matrix`, :func:`mlflow_matrix`: the fast path); any
other model takes a :class:`~driftloop_serving.domain.signature.Batch` typed by its
signature (:func:`v2_batch`, :func:`mlflow_batch`). A request that cannot be read is
a :class:`BadRequest` naming the problem; a column or value that does not fit the
signature an :class:`InputMismatch` naming the column and the row.

Answers keep their type: string labels are V2 ``BYTES`` (``content_type`` ``"str"``)
and strings in ``/invocations``. A V2 request may ask for the ``predict_proba``
output (as MLServer's scikit-learn runtime names it), an ``/invocations`` request
with ``params.predict_method`` ``"predict_proba"`` (:func:`mlflow_predict_method`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop_serving.domain import binary_tensors
from driftloop_serving.domain.errors import BadRequest, InputMismatch
from driftloop_serving.domain.models import Column
from driftloop_serving.domain.signature import Batch, RawColumn, batch_of, typed_tensor

__all__ = [
    "OUTPUTS",
    "V2_NUMERIC",
    "BadRequest",
    "InputMismatch",
    "mlflow_batch",
    "mlflow_matrix",
    "mlflow_predict_method",
    "v2_batch",
    "v2_matrix",
    "v2_outputs",
    "v2_response",
]

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


Matrix = np.ndarray[Any, Any]


def _not_a_number(rows: Any, columns: Sequence[str], what: str) -> InputMismatch:
    """Which value of ``rows`` is not a number (worked out once the conversion failed)."""
    table = rows if isinstance(rows, list) else [rows]
    if table and not isinstance(table[0], list):
        table = [[v] for v in table] if what == "column" else [table]
    for row, values in enumerate(table):
        for index, value in enumerate(values if isinstance(values, list) else [values]):
            if value is None:
                continue  # a null is NaN to numpy
            try:
                float(value)
            except (TypeError, ValueError):
                name = columns[index] if index < len(columns) else f"column {index}"
                return InputMismatch(f"column {name!r}, row {row}: {value!r} is not a number")
    return InputMismatch(f"{what}: every feature must be a number")


def _numbers(rows: Any, what: str, columns: Sequence[str] = ()) -> Matrix:
    try:
        matrix = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise _not_a_number(rows, columns, what) from None
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
    parts = [_numbers(named[c], "column", (c,)).reshape(-1) for c in columns]
    lengths = {len(p) for p in parts}
    if len(lengths) != 1 or (rows is not None and lengths != {rows}):
        raise BadRequest("every feature must have the same number of rows")
    return np.column_stack(parts)


# -- V2 --------------------------------------------------------------------------------


def _v2_not(
    name: str, shape: list[int], datatype: str, data: Any, columns: Sequence[str]
) -> BadRequest:
    """Which value of a V2 tensor is not ``datatype`` (worked out once the conversion failed)."""
    flat = list(_flat(data))
    width = shape[1] if len(shape) == 2 and shape[1] else 1
    for index, value in enumerate(flat):
        try:
            np.asarray(value, dtype=V2_NUMERIC[datatype])
        except (TypeError, ValueError):
            column = (
                columns[index % width] if width > 1 and width == len(columns) else name or "input"
            )
            return InputMismatch(
                f"column {column!r}, row {index // width}: {value!r} is not {datatype}"
            )
    return BadRequest(f"input {name!r}: data is not {datatype}")


def _flat(data: Any) -> Any:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    elif isinstance(data, np.ndarray):  # a binary tensor's values (binary_tensors)
        yield from data.reshape(-1).tolist()
    else:
        yield data


def _no_data(name: str, tensor: dict[str, Any]) -> BadRequest:
    parameters = tensor.get("parameters")
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        return BadRequest(
            f"input {name!r}: binary_data_size is given, and the request has no "
            f"{binary_tensors.HEADER} header saying where its JSON ends"
        )
    return BadRequest(f"input {name!r}: 'data' must be a list")


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
        if not isinstance(data, list | np.ndarray):
            raise _no_data(name, tensor)
        try:
            flat: Matrix = np.asarray(data, dtype=V2_NUMERIC[datatype]).reshape(-1)
        except (TypeError, ValueError):
            raise _v2_not(name, shape, datatype, data, columns) from None
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


#: The outputs a V2 request may ask for (``outputs: [{"name": ...}]``).
OUTPUTS = ("predict", "predict_proba")


def v2_outputs(body: Any) -> tuple[str, ...]:
    """The outputs a V2 ``infer`` request asks for (default: ``predict``).

    Raises:
        BadRequest: ``outputs`` is not a list of ``{"name": ...}`` naming known outputs.
    """
    asked = body.get("outputs") if isinstance(body, dict) else None
    if asked is None:
        return ("predict",)
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    names = tuple(str(o.get("name", "")) for o in asked)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise BadRequest(
            f"unknown output(s) {', '.join(map(repr, unknown))}: the model answers "
            f"{' and '.join(map(repr, OUTPUTS))}"
        )
    return names or ("predict",)


def _v2_output(name: str, array: Matrix, binary: list[bytes] | None) -> dict[str, Any]:
    """One V2 output tensor: numbers as numbers, strings as ``BYTES`` strings; when
    ``binary`` is a list, its data is appended there instead (binary tensor extension)."""
    if array.dtype.kind == "O":  # what pandas gives: strings, or numbers in objects
        array = np.asarray(array.tolist())
    kind = array.dtype.kind
    output: dict[str, Any] = {"name": name, "shape": list(array.shape)}
    if kind == "b":
        output["datatype"] = "BOOL"
    elif kind in "iu":
        output["datatype"] = "INT64"
    elif kind == "f":
        output["datatype"] = "FP64"
    else:
        output["datatype"] = "BYTES"
        output["parameters"] = {"content_type": "str"}
    if binary is not None:
        data = binary_tensors.encode(array, output["datatype"])
        output.setdefault("parameters", {})["binary_data_size"] = len(data)
        binary.append(data)
    elif output["datatype"] == "BYTES":
        flat = array.reshape(-1).tolist()
        output["data"] = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    else:
        output["data"] = array.reshape(-1).tolist()
    return output


def v2_response(
    *,
    model: str,
    version: int,
    request_id: str,
    predictions: Matrix,
    route: str,
    probabilities: Matrix | None = None,
    outputs: Sequence[str] = ("predict",),
    binary: Collection[str] = (),
) -> tuple[dict[str, Any], bytes]:
    """The V2 ``infer`` response; ``parameters`` names the version and route that answered.

    Args:
        outputs: The outputs asked for, in order (``predict_proba`` needs ``probabilities``).
        binary: The outputs answered in binary (:func:`binary_tensors.binary_outputs`).

    Returns:
        The response's JSON, and the data of its binary outputs in their order (to send
        after the JSON; empty when no output is binary).
    """
    answers = {"predict": predictions, "predict_proba": probabilities}
    data: list[bytes] = []
    content = {
        "model_name": model,
        "model_version": str(version),
        "id": request_id,
        "parameters": {"route": route},
        "outputs": [
            _v2_output(name, answer, data if name in binary else None)
            for name in outputs
            if (answer := answers.get(name)) is not None
        ],
    }
    return content, b"".join(data)


#: V2 datatypes a column of each MLflow type may be sent as.
_NUMBERS = frozenset(V2_NUMERIC) - {"BOOL"}
_V2_ACCEPTS = {
    "integer": _NUMBERS,
    "long": _NUMBERS,
    "float": _NUMBERS,
    "double": _NUMBERS,
    "boolean": frozenset({"BOOL"}) | _NUMBERS,
    "string": frozenset({"BYTES"}),
    "binary": frozenset({"BYTES"}),
    "datetime": frozenset({"BYTES"}),
}


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    content_type: str | None


def _v2_tensors(body: Any) -> list[_Tensor]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest("the request needs a non-empty 'inputs' list")
    tensors = []
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{index}] must be an object")
        name = str(tensor.get("name", ""))
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
        if datatype != "BYTES" and datatype not in V2_NUMERIC:
            raise BadRequest(
                f"input {name!r}: datatype {datatype!r} is not supported "
                f"(use BYTES or one of {', '.join(V2_NUMERIC)})"
            )
        if not isinstance(data, list | np.ndarray):
            raise _no_data(name, tensor)
        flat = list(_flat(data))
        if len(flat) != math.prod(shape):
            raise BadRequest(
                f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}"
            )
        parameters = tensor.get("parameters")
        content_type = parameters.get("content_type") if isinstance(parameters, dict) else None
        tensors.append(_Tensor(name, shape, str(datatype), flat, content_type))
    return tensors


def _v2_column(tensor: _Tensor, column: Column, values: list[Any]) -> RawColumn:
    accepted = _V2_ACCEPTS.get(column.type, frozenset())
    if tensor.datatype not in accepted:
        raise InputMismatch(
            f"column {column.name!r} is {column.type}: send it as "
            f"{' or '.join(sorted(accepted)) or 'another input'}, not {tensor.datatype}"
        )
    return RawColumn(values, base64=tensor.content_type == "base64")


def v2_batch(body: Any, columns: Sequence[Column]) -> Batch:
    """The typed inputs of a V2 ``infer`` request body, by the model's signature.

    One input per column (shape ``[rows]`` or ``[rows, 1]``, named after it), or one
    ``[rows, columns]`` input whose columns are the signature's in order. A tensor
    signature takes its tensors by name (or its only one, whatever its name).

    Raises:
        BadRequest: On a malformed body.
        InputMismatch: A column missing or unknown, a datatype that cannot carry the
            column's type, or a value that does not fit it (naming the column and row).
    """
    tensors = _v2_tensors(body)
    if columns and columns[0].shape is not None:
        return _v2_tensor_batch(tensors, columns)
    names = [c.name for c in columns]
    by_name = {c.name: c for c in columns}
    raw: dict[str, RawColumn] = {}
    if len(tensors) == 1 and len(columns) > 1 and tensors[0].name not in by_name:
        tensor = tensors[0]
        if len(tensor.shape) != 2 or tensor.shape[1] != len(columns):
            raise InputMismatch(
                f"input {tensor.name!r}: expected shape [rows, {len(columns)}] "
                f"({', '.join(names)}), or one input per column, got {tensor.shape}"
            )
        width = len(columns)
        for index, column in enumerate(columns):
            raw[column.name] = _v2_column(tensor, column, tensor.data[index::width])
        return batch_of(raw, columns)
    for tensor in tensors:
        name = tensor.name
        if name not in by_name and len(tensors) == 1 == len(columns):
            name = columns[0].name  # the only column, whatever the input's name
        if name in raw:
            raise InputMismatch(f"column {name!r} is given twice")
        if not (len(tensor.shape) == 1 or (len(tensor.shape) == 2 and tensor.shape[1] == 1)):
            raise InputMismatch(
                f"input {tensor.name!r}: a column's shape is [rows] or [rows, 1], "
                f"got {tensor.shape}"
            )
        known = by_name.get(name)
        if known is None:
            raw[name] = RawColumn(tensor.data)  # batch_of names it as unknown
        else:
            raw[name] = _v2_column(tensor, known, tensor.data)
    return batch_of(raw, columns)


def _v2_tensor_batch(tensors: list[_Tensor], columns: Sequence[Column]) -> Batch:
    by_name = {c.name: c for c in columns}
    arrays: dict[str, Matrix] = {}
    for tensor in tensors:
        column = by_name.get(tensor.name)
        if column is None and len(tensors) == 1 == len(columns):
            column = columns[0]
        if column is None:
            raise InputMismatch(
                f"unknown input {tensor.name!r}: the model's signature takes "
                f"{', '.join(repr(c.name) for c in columns)}"
            )
        arrays[column.name] = typed_tensor(column, tensor.data, tensor.shape)
    return _tensor_batch(arrays, columns)


def _tensor_batch(arrays: dict[str, Matrix], columns: Sequence[Column]) -> Batch:
    missing = [c.name for c in columns if c.name not in arrays]
    if missing:
        raise InputMismatch(f"missing input(s) {', '.join(map(repr, missing))}")
    rows = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(rows.values())) != 1:
        raise InputMismatch(f"every input needs the same number of rows, got {rows}")
    count = next(iter(rows.values()))
    if not count:
        raise InputMismatch("no rows to score")
    return Batch(columns={c.name: arrays[c.name] for c in columns}, rows=count, tensor=True)


# -- MLflow ------------------------------------------------------------------------------


def _dataframe_split(value: Any, columns: Sequence[str]) -> Matrix:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadRequest("'dataframe_split' needs 'columns' and 'data'")
    names = value.get("columns")
    given = [str(n) for n in names] if isinstance(names, list) else columns
    matrix = _numbers(value["data"], "dataframe_split", given)
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
    key, value = _mlflow_key(body)
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
    return _check_width(_numbers(records, key, columns), columns)


def _mlflow_key(body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    if len(keys) != 1:
        raise BadRequest(
            "the body must have exactly one of 'dataframe_split', 'dataframe_records', "
            f"'instances' or 'inputs' (got {sorted(body)})"
        )
    return keys[0], body[keys[0]]


def _positional(
    rows: list[Any], names: Sequence[str], key: str, text: bool
) -> dict[str, RawColumn]:
    """Rows of values (lists), one per column of ``names`` in order."""
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            got = len(row) if isinstance(row, list) else "not a list of"
            raise InputMismatch(
                f"'{key}', row {index}: {got} values for {len(names)} columns ({', '.join(names)})"
            )
    return {name: RawColumn([row[i] for row in rows], text=text) for i, name in enumerate(names)}


def _mlflow_columns(
    key: str, value: Any, columns: Sequence[Column], text: bool
) -> dict[str, RawColumn]:
    names = [c.name for c in columns]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise BadRequest("'dataframe_split' needs 'columns' and 'data'")
        given = value.get("columns")
        if given is not None and not isinstance(given, list):
            raise BadRequest("'dataframe_split': 'columns' must be a list of names")
        if given is not None and len(set(map(str, given))) != len(given):
            raise InputMismatch("'dataframe_split': a column is named twice")
        return _positional(value["data"], [str(c) for c in given or names], key, text)
    if isinstance(value, dict):  # columns by name
        return {
            str(name): RawColumn(values if isinstance(values, list) else [values], text=text)
            for name, values in value.items()
        }
    if not isinstance(value, list) or not value:
        raise BadRequest(f"'{key}' must be a non-empty list")
    if all(isinstance(r, dict) for r in value):  # records: a key left out is a null
        found = list(dict.fromkeys(str(k) for record in value for k in record))
        return {
            name: RawColumn([record.get(name) for record in value], text=text) for name in found
        }
    if all(isinstance(r, list) for r in value):
        return _positional(value, names, key, text)
    if len(columns) == 1:  # one value per row
        return {names[0]: RawColumn(value, text=text)}
    return _positional([value], names, key, text)  # one row


def mlflow_batch(body: Any, columns: Sequence[Column], *, text: bool = False) -> Batch:
    """The typed inputs of an MLflow ``/invocations`` body, by the model's signature.

    Args:
        body: The JSON body (a CSV body is given as ``dataframe_split`` of strings).
        columns: The model's signature columns (or tensors).
        text: The values are text to parse (a CSV body).

    Raises:
        BadRequest: On a body with none (or more than one) of the accepted keys.
        InputMismatch: A column missing or unknown, or a value that does not fit its
            column (naming the column and row).
    """
    key, value = _mlflow_key(body)
    if columns and columns[0].shape is not None:
        if key in ("dataframe_split", "dataframe_records"):
            raise BadRequest(f"the model takes tensors: send 'inputs' or 'instances', not {key!r}")
        if isinstance(value, dict):
            arrays = {}
            by_name = {c.name: c for c in columns}
            for name, data in value.items():
                if name not in by_name:
                    raise InputMismatch(
                        f"unknown input {name!r}: the model's signature takes "
                        f"{', '.join(repr(c.name) for c in columns)}"
                    )
                arrays[name] = typed_tensor(by_name[name], data)
            return _tensor_batch(arrays, columns)
        if len(columns) != 1:
            raise InputMismatch(
                f"the model takes {len(columns)} tensors: send them by name "
                f"({', '.join(repr(c.name) for c in columns)})"
            )
        return _tensor_batch({columns[0].name: typed_tensor(columns[0], value)}, columns)
    return batch_of(_mlflow_columns(key, value, columns, text), columns)


def mlflow_predict_method(params: Any) -> str:
    """The method an ``/invocations`` request asks for: ``params.predict_method``,
    ``"predict"`` (default) or ``"predict_proba"`` (MLflow's names of
    ``pyfunc_predict_fn``).

    Raises:
        BadRequest: Another method.
    """
    method = params.get("predict_method", "predict") if isinstance(params, Mapping) else "predict"
    if method not in OUTPUTS:
        raise BadRequest(
            f"params.predict_method must be {' or '.join(map(repr, OUTPUTS))}, got {method!r}"
        )
    return str(method)
