"""The model signature's inputs, and a request's values typed by them.

An MLflow signature (the ``signature.inputs`` of ``MLmodel``, a JSON list) is either
columns (``ColSpec``: ``{"name": "age", "type": "long", "required": true}``) or
tensors (``TensorSpec``: ``{"name": "x", "type": "tensor", "tensor-spec": {"dtype":
"float32", "shape": [-1, 4]}}``). :func:`signature_columns` reads it.

A model whose columns are all floating point is scored from one float matrix (the
fast path, :mod:`driftloop_serving.domain.protocols`); any other model is scored from
a :class:`Batch`, one array per column, each value converted to its column's type
by :func:`typed_column` (or :func:`typed_tensor`). A value that does not fit, a null
in a required column (MLflow infers ``required: false`` for a column that had nulls
when the signature was inferred), a missing or an extra column is an
:class:`InputMismatch` naming the column and the row.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from driftloop_serving.domain.errors import InputMismatch
from driftloop_serving.domain.models import Column

__all__ = [
    "COLUMN_DTYPES",
    "FLOAT_TYPES",
    "Batch",
    "InputMismatch",
    "RawColumn",
    "batch_of",
    "needs_types",
    "signature_columns",
    "signature_output_type",
    "typed_column",
    "typed_tensor",
]

Array = np.ndarray[Any, Any]

#: numpy types of MLflow's column types.
COLUMN_DTYPES: dict[str, Any] = {
    "integer": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
    "string": np.object_,
    "binary": np.object_,
    "datetime": np.dtype("datetime64[ns]"),
}

#: Column types (and tensor dtypes) a float matrix carries as is: the fast path.
FLOAT_TYPES = frozenset({"double", "float", "float64", "float32"})

_BOUNDS = {
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}

#: Rows named at most in one message.
_SHOWN = 40


@dataclass(frozen=True)
class RawColumn:
    """One column of a request as sent, before it is typed.

    Attributes:
        values: One value per row (``None`` for a null).
        text: The values are text to parse (a CSV body), whatever the column's type.
        base64: A ``binary`` column's strings are base64 (MLflow's JSON, V2's
            ``content_type: base64``); otherwise a string's UTF-8 bytes are taken.
    """

    values: Sequence[Any]
    text: bool = False
    base64: bool = True


@dataclass(frozen=True)
class Batch:
    """The typed inputs of one request: one array per signature column, in order.

    Attributes:
        columns: Column (or tensor) name -> its values, one per row (a tensor's first
            dimension is its rows).
        rows: The number of rows.
        tensor: The signature is tensors (the model takes arrays, not a table).
    """

    columns: dict[str, Array]
    rows: int
    tensor: bool = False

    def __len__(self) -> int:
        return self.rows


def signature_columns(mlmodel: Mapping[str, Any]) -> tuple[Column, ...]:
    """The input columns (or tensors) of an ``MLmodel``'s signature, in order."""
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if not inputs:
        return ()
    try:
        specs = json.loads(inputs)
    except (TypeError, ValueError):
        return ()
    columns = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec") or {}
            shape = tuple(int(d) for d in tensor.get("shape") or (-1,))
            columns.append(
                Column(
                    name=str(spec.get("name") or (f"input-{index}" if len(specs) > 1 else "")),
                    type=str(tensor.get("dtype", "float64")),
                    shape=shape,
                )
            )
        elif "name" in spec:
            columns.append(
                Column(
                    name=str(spec["name"]),
                    type=str(spec.get("type", "double")),
                    required=bool(spec.get("required", True)),
                )
            )
    return tuple(columns)


def signature_output_type(mlmodel: Mapping[str, Any]) -> str:
    """The type of the signature's first output (a column type or a tensor dtype; ``""``
    when unknown)."""
    outputs = (mlmodel.get("signature") or {}).get("outputs")
    try:
        specs = json.loads(outputs) if outputs else []
    except (TypeError, ValueError):
        return ""
    if not specs or not isinstance(specs[0], dict):
        return ""
    spec = specs[0]
    if spec.get("type") == "tensor":
        return str((spec.get("tensor-spec") or {}).get("dtype", ""))
    return str(spec.get("type", ""))


def needs_types(columns: Sequence[Column]) -> bool:
    """Whether requests are typed by the signature (a column is not floating point)."""
    return any(column.type not in FLOAT_TYPES for column in columns)


# -- one value ---------------------------------------------------------------------------


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _integer(value: Any, kind: str, text: bool) -> int | None:
    if text and isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        return None
    low, high = _BOUNDS[kind]
    return value if low <= value <= high else None


def _real(value: Any, text: bool) -> float | None:
    if text and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _boolean(value: Any, text: bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _binary(value: Any, b64: bool) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        return None
    if not b64:
        return value.encode()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _text(value: Any) -> str | None:
    """A string as is, or ``bytes`` that are UTF-8 text (a binary ``BYTES`` tensor's)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _datetime(value: Any) -> np.datetime64 | None:
    value = _text(value)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "ns")


def _typed(value: Any, kind: str, raw: RawColumn) -> Any:
    """``value`` as ``kind``, or ``None`` when it does not fit."""
    if kind in _BOUNDS:
        return _integer(value, kind, raw.text)
    if kind in ("float", "double"):
        return _real(value, raw.text)
    if kind == "boolean":
        return _boolean(value, raw.text)
    if kind == "string":
        return _text(value)
    if kind == "binary":
        return _binary(value, raw.base64 and not raw.text)
    if kind == "datetime":
        return _datetime(value)
    raise InputMismatch(f"column type {kind!r} is not supported by serving")


def _rows(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOWN])
    return shown + (f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else "")


def typed_column(column: Column, raw: RawColumn, *, first_row: int = 0) -> Array:
    """The values of ``raw`` as ``column``'s type, one per row.

    ``first_row`` is the number of the first value's row in errors (a chunk of a file).

    A null in an optional column stays a null: NaN in a number column (an integer
    column with nulls becomes floating point, as in pandas), ``None`` otherwise,
    NaT in a datetime column.

    Raises:
        InputMismatch: A value does not fit the type, or is null in a required
            column; the message names the column and the rows.
    """
    kind = column.type
    values: list[Any] = []
    nulls: list[int] = []
    for row, value in enumerate(raw.values):
        if _is_null(value) or (raw.text and value == ""):
            if column.required:
                nulls.append(first_row + row)
            values.append(None)
            continue
        typed = _typed(value, kind, raw)
        if typed is None:
            raise InputMismatch(
                f"column {column.name!r}, row {first_row + row}: {value!r} is not {_article(kind)}"
            )
        values.append(typed)
    if nulls:
        raise InputMismatch(
            f"column {column.name!r}, row {_rows(nulls)}: null, and the model's signature "
            "requires a value"
        )
    dtype = COLUMN_DTYPES[kind]
    has_null = any(v is None for v in values)
    if kind in _BOUNDS and has_null:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if kind in ("float", "double") and has_null:
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)
    if kind == "boolean" and has_null:
        return np.array(values, dtype=np.object_)
    if kind == "datetime":
        return np.array(
            [np.datetime64("NaT", "ns") if v is None else v for v in values], dtype=dtype
        )
    if dtype is np.object_:
        array = np.empty(len(values), dtype=np.object_)
        array[:] = values
        return array
    return np.array(values, dtype=dtype)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


# -- tensors -----------------------------------------------------------------------------


def _tensor_dtype(column: Column) -> np.dtype[Any]:
    try:
        return np.dtype(column.type)
    except TypeError:
        raise InputMismatch(f"tensor dtype {column.type!r} is not supported by serving") from None


def _flatten(data: Any) -> Any:
    if isinstance(data, list | tuple):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _tensor_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """``value`` as an item of a ``dtype`` tensor, or ``None`` when it does not fit."""
    if dtype.kind == "f":
        return _real(value, False)
    if dtype.kind in "iu":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        bounds = np.iinfo(dtype)
        return value if bounds.min <= value <= bounds.max else None
    if dtype.kind == "b":
        return _boolean(value, False)
    if dtype.kind == "U":
        return _text(value)
    return value if isinstance(value, str | bytes) else None  # S or object: strings or bytes


def typed_tensor(column: Column, data: Any, shape: Sequence[int] | None = None) -> Array:
    """``data`` (nested lists, or flat with ``shape``) as ``column``'s tensor.

    Raises:
        InputMismatch: A value does not fit the dtype, or is null (a tensor has no
            nulls), or the shape does not match the signature's (``-1`` matches any).
    """
    dtype = _tensor_dtype(column)
    name = f"input {column.name!r}" if column.name else "the input"
    if shape is None:
        try:
            shape = np.asarray(data, dtype=np.object_).shape
        except ValueError:
            raise InputMismatch(f"{name}: the rows do not all have the same shape") from None
    flat = list(_flatten(data))
    if len(flat) != math.prod(shape):
        raise InputMismatch(f"{name}: shape {list(shape)} needs {math.prod(shape)} values")
    width = max(1, math.prod(shape[1:])) if len(shape) > 1 else 1
    items = []
    for index, value in enumerate(flat):
        typed = None if _is_null(value) else _tensor_value(value, dtype)
        if typed is None:
            what = (
                "null, and a tensor has no nulls"
                if _is_null(value)
                else (f"{value!r} is not {dtype.name}")
            )
            raise InputMismatch(f"{name}, row {index // width}: {what}")
        items.append(typed)
    array = np.array(items, dtype=dtype).reshape(shape) if items else np.empty(shape, dtype)
    expected = column.shape or (-1,)
    if len(expected) == array.ndim + 1:  # one row sent without its batch dimension
        array = array.reshape((1, *array.shape))
    if len(expected) != array.ndim or any(
        want not in (-1, got) for want, got in zip(expected, array.shape, strict=True)
    ):
        raise InputMismatch(
            f"{name}: shape {list(array.shape)} does not match the signature's {list(expected)}"
        )
    return array


# -- a whole request ---------------------------------------------------------------------


def batch_of(
    raw: Mapping[str, RawColumn], columns: Sequence[Column], *, first_row: int = 0
) -> Batch:
    """The typed batch of a request's columns, checked against the signature.

    Args:
        raw: The request's columns by name.
        columns: The signature's columns.
        first_row: The number of the first row in errors (a chunk of a file).

    Raises:
        InputMismatch: A column the model does not take, a required column missing,
            columns of different lengths, or a value that does not fit.
    """
    known = {column.name for column in columns}
    unknown = [name for name in raw if name not in known]
    if unknown:
        raise InputMismatch(
            f"unknown column(s) {', '.join(map(repr, unknown))}: the model's signature "
            f"takes {', '.join(c.name for c in columns)}"
        )
    missing = [c.name for c in columns if c.name not in raw and c.required]
    if missing:
        raise InputMismatch(f"missing column(s) {', '.join(map(repr, missing))}")
    lengths = {name: len(column.values) for name, column in raw.items()}
    if len(set(lengths.values())) > 1:
        raise InputMismatch(
            "every column needs the same number of rows, got "
            + ", ".join(f"{name!r}: {n}" for name, n in lengths.items())
        )
    rows = next(iter(lengths.values()), 0)
    if not rows:
        raise InputMismatch("no rows to score")
    typed = {
        column.name: typed_column(
            column, raw.get(column.name) or RawColumn([None] * rows), first_row=first_row
        )
        for column in columns
    }
    return Batch(columns=typed, rows=rows)
