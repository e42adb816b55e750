"""Batch scoring's pure part: which model a reference names, and a file's rows (one chunk
at a time, as Arrow record batches) as the model's inputs, typed as serving types a
request.

A model whose signature columns are all floating point is scored from a float matrix
(the fast path, as ``/invocations`` does); any other from a
:class:`~driftloop_serving.domain.signature.Batch` typed by its signature
(:func:`~driftloop_serving.domain.signature.batch_of`). Every error names the column and
the row, counted from the file's first data row (0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftloop_serving.domain.errors import InputMismatch
from driftloop_serving.domain.models import Predictor
from driftloop_serving.domain.signature import Batch, RawColumn, batch_of

__all__ = [
    "BatchInputError",
    "ChunkPlan",
    "ModelReference",
    "chunk_inputs",
    "output_columns",
    "parse_reference",
    "plan_chunks",
]

Array = np.ndarray[Any, Any]

#: MLflow's URI scheme of registered models (``models:/name@alias``, ``models:/name/3``).
_MODELS_URI = "models:/"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")


class BatchInputError(InputMismatch):
    """The file cannot be scored as it is; the message names the column (and the row)."""


@dataclass(frozen=True)
class ModelReference:
    """A registered model's version, by alias or by number (exactly one of the two)."""

    name: str
    alias: str = ""
    version: int | None = None

    def __str__(self) -> str:
        return (
            f"{self.name}/{self.version}"
            if self.version is not None
            else (f"{self.name}@{self.alias}")
        )


def parse_reference(text: str, *, default_alias: str = "champion") -> ModelReference:
    """``NAME``, ``NAME@ALIAS``, ``NAME/VERSION`` (or MLflow's ``models:/`` forms of them).

    Raises:
        BatchInputError: The text names no model.
    """
    body = text.strip().removeprefix(_MODELS_URI)
    name, alias, version = body, default_alias, None
    if "@" in body:
        name, _, alias = body.rpartition("@")
    elif "/" in body:
        name, _, number = body.rpartition("/")
        if not number.isdigit() or int(number) < 1:
            raise BatchInputError(f"{text!r}: the version after '/' must be a number from 1")
        version = int(number)
    if not _NAME.match(name):
        raise BatchInputError(
            f"{text!r} names no model: give NAME, NAME@ALIAS or NAME/VERSION "
            "(letters, digits, '.', '_', '-')"
        )
    if version is None and not _ALIAS.match(alias):
        raise BatchInputError(f"{text!r}: {alias!r} is not an alias (letters, digits, '_', '-')")
    return ModelReference(name=name, alias="" if version is not None else alias, version=version)


@dataclass(frozen=True)
class ChunkPlan:
    """What each chunk of a file gives the model, decided once on the file's columns.

    Attributes:
        model_columns: The file's columns given to the model, in the signature's order
            (the file's order when the model has no signature).
        keep: The file's columns copied to the output beside the predictions.
    """

    model_columns: tuple[str, ...]
    keep: tuple[str, ...] = ()


def plan_chunks(
    file_columns: Sequence[str], predictor: Predictor, keep: Sequence[str] = ()
) -> ChunkPlan:
    """Match a file's columns with the model's signature.

    Raises:
        BatchInputError: A kept column the file lacks, a column the model does not take
            (and is not kept), a required column missing, or a tensor signature.
    """
    present = list(file_columns)
    if len(set(present)) != len(present):
        twice = sorted({c for c in present if present.count(c) > 1})
        raise BatchInputError(f"the input has column(s) {', '.join(map(repr, twice))} twice")
    absent = [c for c in keep if c not in present]
    if absent:
        raise BatchInputError(
            f"kept column(s) {', '.join(map(repr, absent))} are not in the input "
            f"(it has {', '.join(present)})"
        )
    if any(column.shape is not None for column in predictor.columns):
        raise BatchInputError(
            "the model's signature is tensors, not columns: batch scoring reads tables"
        )
    given = [c for c in present if c not in keep]
    if not predictor.columns:
        if not given:
            raise BatchInputError("the input has no column to give the model")
        return ChunkPlan(model_columns=tuple(given), keep=tuple(keep))
    signed = [column.name for column in predictor.columns]
    unknown = [c for c in given if c not in signed]
    if unknown:
        raise BatchInputError(
            f"column {unknown[0]!r} of the input is not an input of the model (its signature "
            f"takes {', '.join(signed)}); keep it (--keep {unknown[0]}) to copy it to the output"
        )
    missing = [c.name for c in predictor.columns if c.name not in given and c.required]
    if missing:
        raise BatchInputError(
            f"missing column(s) {', '.join(map(repr, missing))}: the model's signature "
            f"takes {', '.join(signed)}"
        )
    return ChunkPlan(model_columns=tuple(c for c in signed if c in given), keep=tuple(keep))


def _first(mask: Any) -> int:
    found: int = pc.index(mask, True).as_py()
    return found


def _floats(array: Any, name: str, first_row: int) -> Array:
    """A column as float64, or an error naming it and the first row that is not a number."""
    if array.null_count:
        row = first_row + _first(pc.is_null(array))
        raise BatchInputError(f"column {name!r}, row {row}: null, and the model takes a number")
    kind = array.type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    ):
        raise BatchInputError(f"column {name!r} holds {kind}, and the model takes numbers")
    try:
        found: Array = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for row, value in enumerate(array.to_pylist()):
            try:
                float(value)
            except (TypeError, ValueError):
                raise BatchInputError(
                    f"column {name!r}, row {first_row + row}: {value!r} is not a number"
                ) from None
        raise
    return found


def _values(array: Any) -> list[Any]:
    """A column's values as Python values, datetimes as ISO 8601 text (as typed requests
    send them)."""
    values: list[Any] = array.to_pylist()
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        return [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return values


def chunk_inputs(
    chunk: Any, plan: ChunkPlan, predictor: Predictor, *, first_row: int, text: bool = False
) -> Array | Batch:
    """One chunk (an Arrow record batch) as the model's inputs.

    Args:
        chunk: The chunk, with the file's columns.
        plan: What the model is given (:func:`plan_chunks`).
        predictor: The model.
        first_row: The file row of the chunk's first row (for errors).
        text: The values are text to parse (a CSV file read as strings).

    Raises:
        BatchInputError: A value does not fit its column; the message names both.
    """
    if not predictor.typed:
        columns = [_floats(chunk.column(name), name, first_row) for name in plan.model_columns]
        return np.column_stack(columns) if columns else np.empty((chunk.num_rows, 0))
    raw = {
        name: RawColumn(_values(chunk.column(name)), text=text, base64=False)
        for name in plan.model_columns
    }
    try:
        return batch_of(raw, predictor.columns, first_row=first_row)
    except BatchInputError:
        raise
    except InputMismatch as error:
        raise BatchInputError(str(error)) from None


def output_columns(predictions: Any, rows: int) -> dict[str, Any]:
    """The prediction columns of the output: ``prediction``, or ``prediction_0`` ... for
    a row of several values.

    Raises:
        BatchInputError: The model gave a different number of rows, or rows of more
            than one dimension.
    """
    found = np.asarray(predictions)
    if found.ndim == 0 or found.shape[0] != rows:
        raise BatchInputError(
            f"the model answered {found.shape[0] if found.ndim else 1} row(s) for {rows}"
        )
    if found.ndim == 1:
        return {"prediction": pa.array(found)}
    if found.ndim == 2:
        return {f"prediction_{i}": pa.array(found[:, i]) for i in range(found.shape[1])}
    raise BatchInputError(f"the model answered rows of shape {found.shape[1:]}; a file holds one")
