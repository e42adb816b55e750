"""Loading an MLflow model folder (``MLmodel`` + files) into something that predicts.

Two flavors are read without MLflow itself: ``sklearn`` (skops, as MLflow 3 writes
it, or cloudpickle/pickle) and ``onnx`` (onnxruntime). The model's input
signature, when it has one, names and orders the columns.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import yaml

MLMODEL = "MLmodel"


class ModelLoadError(Exception):
    """A model folder that cannot be served (unknown flavor, unreadable file ...)."""


@dataclass(frozen=True)
class Column:
    """One input column of the model's signature."""

    name: str
    type: str


@dataclass(frozen=True)
class Predictor:
    """A loaded model: ``predict(matrix)`` gives one output per input row.

    Attributes:
        flavor: ``sklearn`` or ``onnx``.
        columns: The signature's input columns, in order (empty when unknown).
        predict: Takes a 2-D float array whose columns are in ``columns``' order,
            returns a 1-D or 2-D array.
    """

    flavor: str
    columns: tuple[Column, ...]
    predict: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]


def _signature_columns(mlmodel: dict[str, Any]) -> tuple[Column, ...]:
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if not inputs:
        return ()
    try:
        specs = json.loads(inputs)
    except (TypeError, ValueError):
        return ()
    return tuple(
        Column(name=str(spec["name"]), type=str(spec.get("type", "double")))
        for spec in specs
        if isinstance(spec, dict) and "name" in spec
    )


Predict = Callable[[np.ndarray[Any, Any]], Any]


def _sklearn(folder: Path, flavor: dict[str, Any]) -> Predict:
    path = folder / str(flavor.get("pickled_model", "model.pkl"))
    fmt = str(flavor.get("serialization_format", "cloudpickle"))
    if fmt == "skops":
        import skops.io  # type: ignore[import-untyped]

        # Integrity is the registry's job (every file's SHA-256 is checked before
        # it reaches here), so the types the file needs are trusted, as MLflow does.
        model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    elif fmt in ("cloudpickle", "pickle"):
        with path.open("rb") as handle:
            model = pickle.load(handle)
    else:
        raise ModelLoadError(f"Unknown sklearn serialization format {fmt!r}")
    names = getattr(model, "feature_names_in_", None)
    predict: Predict = model.predict
    if names is not None:
        # Fitted on a DataFrame: give it one with the fitted names, so it does not warn.
        columns = pd.Index(list(names))
        predict = lambda matrix: model.predict(  # noqa: E731 - a closure over columns
            pd.DataFrame(matrix, columns=columns, copy=False)
        )
    return _linear(model, predict) or predict


def _linear(model: Any, checked: Predict) -> Predict | None:
    """sklearn's own arithmetic for a plain linear classifier, without its per-call checks.

    For one row, ``LogisticRegression.predict`` spends ~100 µs validating its input
    (~600 µs through a DataFrame) and ~2 µs computing ``X @ coef_.T + intercept_``.
    The matrices served are already 2-D float64 with the fitted column order, so for
    the exact classes whose ``predict`` is sklearn's linear one (no override) the same
    expression is computed here, giving the same numbers. Anything unusual (another
    width, NaN or infinity, a sparse ``coef_``) goes through ``checked``, which keeps
    sklearn's checks and errors.

    Returns:
        The fast predict, or ``None`` when the model is not such a linear classifier
        (``LogisticRegression``, ``SGDClassifier``, ``LinearSVC``, ...; regressors
        such as ``LinearRegression`` override ``predict`` and keep sklearn's).
    """
    try:
        from sklearn.linear_model._base import (  # type: ignore[import-untyped]
            LinearClassifierMixin,
        )
    except ImportError:  # pragma: no cover - another sklearn layout: keep its predict
        return None
    cls = type(model)
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if not (
        isinstance(coef, np.ndarray)
        and coef.dtype == np.float64
        and coef.ndim in (1, 2)
        and isinstance(intercept, np.ndarray | float | int)
        and getattr(model, "n_features_in_", coef.shape[-1]) == coef.shape[-1]
    ):
        return None
    width = coef.shape[-1]
    coef_t = coef.T if coef.ndim == 2 else coef

    def usable(matrix: np.ndarray[Any, Any]) -> bool:
        return (
            matrix.ndim == 2
            and matrix.dtype == np.float64
            and matrix.shape[1] == width
            and bool(np.isfinite(matrix).all())
        )

    if (
        getattr(cls, "predict", None) is LinearClassifierMixin.predict
        and getattr(cls, "decision_function", None) is LinearClassifierMixin.decision_function
        and isinstance(getattr(model, "classes_", None), np.ndarray)
    ):
        classes = model.classes_

        def classify(matrix: np.ndarray[Any, Any]) -> Any:
            if not usable(matrix):
                return checked(matrix)
            scores = matrix @ coef_t + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

        return classify
    return None


def _onnx(folder: Path, flavor: dict[str, Any]) -> Predict:
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(folder / str(flavor.get("data", "model.onnx"))),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    inputs = session.get_inputs()
    output = session.get_outputs()[0].name
    dtypes = {
        item.name: np.float64 if item.type == "tensor(double)" else np.float32 for item in inputs
    }
    if len(inputs) == 1:
        name = inputs[0].name
        dtype = dtypes[name]
        return lambda matrix: session.run([output], {name: matrix.astype(dtype, copy=False)})[0]

    def by_column(matrix: np.ndarray[Any, Any]) -> Any:
        feed = {
            item.name: matrix[:, i : i + 1].astype(dtypes[item.name])
            for i, item in enumerate(inputs)
        }
        return session.run([output], feed)[0]

    return by_column


_LOADERS: dict[str, Callable[[Path, dict[str, Any]], Predict]] = {
    "sklearn": _sklearn,
    "onnx": _onnx,
}


def load_model(folder: Path) -> Predictor:
    """Load the MLflow model in ``folder``.

    Raises:
        ModelLoadError: If there is no ``MLmodel``, no supported flavor, or a file
            cannot be loaded.
    """
    try:
        mlmodel = yaml.safe_load((folder / MLMODEL).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ModelLoadError(f"Cannot read {MLMODEL}: {error}") from error
    flavors = (mlmodel or {}).get("flavors") or {}
    for name, loader in _LOADERS.items():
        if name in flavors:
            try:
                predict = loader(folder, flavors[name])
            except ModelLoadError:
                raise
            except Exception as error:
                raise ModelLoadError(f"Cannot load the {name} model: {error}") from error
            return Predictor(flavor=name, columns=_signature_columns(mlmodel), predict=predict)
    raise ModelLoadError(
        f"No supported flavor in {MLMODEL} (found {sorted(flavors)}; serving reads "
        f"{sorted(_LOADERS)})"
    )
