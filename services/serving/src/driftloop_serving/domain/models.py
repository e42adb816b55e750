"""What a served model is: a registered version, loaded into something that predicts.

The registry names versions (:class:`VersionInfo`); the model loader turns a
version's folder into a :class:`Predictor`; a :class:`ServedModel` is one of them
answering for a ``(model, alias)`` slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Column",
    "ModelLoadError",
    "Predictor",
    "RegistryError",
    "ServedModel",
    "Slot",
    "VersionInfo",
]

#: A served ``(model, alias)`` pair.
Slot = tuple[str, str]


class ModelLoadError(Exception):
    """A model folder that cannot be served (unknown flavor, unreadable file ...)."""


class RegistryError(Exception):
    """The registry refused or could not answer; the message says why."""


class NotRegisteredYet(RegistryError):
    """The model, or the alias served, does not exist in the registry yet: a declared
    model before its first version, not a failure."""


@dataclass(frozen=True)
class VersionInfo:
    """What serving needs to know of a registered version."""

    name: str
    version: int
    run_id: str
    files: dict[str, str]  # path -> sha256


@dataclass(frozen=True)
class Column:
    """One input column of the model's signature.

    Attributes:
        name: The column's name; a request's features are matched to it (a tensor
            signature's only input may have none).
        type: MLflow's type of the column (``double``, ``long``, ``string`` ...), or a
            tensor's numpy dtype (``float32``, ``int64`` ...), as signed.
        required: Whether every row must have a value (MLflow's ``required``).
        shape: A tensor's shape (``-1`` for any size); ``None`` for a column.
    """

    name: str
    type: str
    required: bool = True
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Predictor:
    """A loaded model: ``predict(inputs)`` gives one output per input row.

    Attributes:
        flavor: The MLflow flavor it was loaded by: ``sklearn`` or ``onnx`` (serving's
            own loaders), or ``python_function`` (``mlflow.pyfunc``).
        columns: The signature's input columns, in order (empty when unknown).
        predict: Takes the request's inputs, returns a 1-D or 2-D array: a 2-D float
            array whose columns are in ``columns``' order or, when ``typed``, a
            :class:`~driftloop_serving.domain.signature.Batch`.
        loader: What serves it, shown in the V2 metadata: ``sklearn-linear`` (the
            linear fast path), ``skops``, ``pickle``, ``onnxruntime`` or ``mlflow.pyfunc``.
        typed: Requests are typed by the signature (a column is not floating point),
            and come as a ``Batch``.
        predict_proba: The class probabilities of the same inputs, one row per input
            row, when the model offers them.
        classes: The classes ``predict_proba``'s columns stand for, when known.
        output_type: The signature's type of the predictions (``string``, ``long``,
            a tensor dtype such as ``str`` or ``float64``; ``""`` when unknown).
    """

    flavor: str
    columns: tuple[Column, ...]
    predict: Callable[[Any], Any]
    loader: str = ""
    typed: bool = False
    predict_proba: Callable[[Any], Any] | None = None
    classes: tuple[Any, ...] = ()
    output_type: str = ""


@dataclass(frozen=True)
class ServedModel:
    """One loaded version of a registered model."""

    name: str
    version: int
    run_id: str
    alias: str
    predictor: Predictor
