"""What a served model is: a registered version, loaded into something that predicts.

The registry names versions (:class:`VersionInfo`); the model loader turns a
version's folder into a :class:`Predictor`; a :class:`ServedModel` is one of them
answering for a ``(model, alias)`` slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

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
        name: The column's name; a request's features are matched to it.
        type: MLflow's type of the column (``double``, ``long`` ...), as signed.
    """

    name: str
    type: str


@dataclass(frozen=True)
class Predictor:
    """A loaded model: ``predict(matrix)`` gives one output per input row.

    Attributes:
        flavor: What loaded it: ``sklearn`` or ``onnx`` (serving's own loaders), or
            ``python_function`` (``mlflow.pyfunc``).
        columns: The signature's input columns, in order (empty when unknown).
        predict: Takes a 2-D float array whose columns are in ``columns``' order,
            returns a 1-D or 2-D array.
    """

    flavor: str
    columns: tuple[Column, ...]
    predict: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]


@dataclass(frozen=True)
class ServedModel:
    """One loaded version of a registered model."""

    name: str
    version: int
    run_id: str
    alias: str
    predictor: Predictor
