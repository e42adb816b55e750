"""Loading an MLflow model folder (``MLmodel`` + files) into something that predicts.

Two flavors are read without MLflow itself: ``sklearn`` (skops, as MLflow 3 writes
it, or cloudpickle/pickle) and ``onnx`` (onnxruntime). The model's input
signature, when it has one, names and orders the columns. A plain linear
classifier predicts through :mod:`driftloop_serving.adapters.sklearn_linear`.

:func:`load_model` is the service's model loader (a
:class:`~driftloop_serving.service_layer.ports.ModelLoaderPort`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import yaml

from driftloop_serving.adapters.sklearn_linear import Predict, linear_predict
from driftloop_serving.domain.models import Column, ModelLoadError, Predictor

MLMODEL = "MLmodel"


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
    return linear_predict(model, predict) or predict


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
