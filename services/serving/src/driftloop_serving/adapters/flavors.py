"""Loading an MLflow model folder (``MLmodel`` + files) into something that predicts.

Two flavors are read without MLflow itself: ``sklearn`` (skops, as MLflow 3 writes
it, or cloudpickle/pickle) and ``onnx`` (onnxruntime). Any other model (XGBoost,
LightGBM, a custom ``mlflow.pyfunc.PythonModel`` ...) loads through
``mlflow.pyfunc.load_model``, with the packages it needs installed in the serving
image. The model's input signature, when it has one, names, orders and types the
columns. A plain linear classifier predicts through
:mod:`driftloop_serving.adapters.sklearn_linear`.

Loading never trusts the file: a checksum proves only that it is the file that was
registered, not that whoever registered it meant well. A skops file loads only if
every type it holds is scikit-learn's, NumPy's or SciPy's (or named in
``DRIFTLOOP_SERVING_SKOPS_TRUSTED_TYPES``); a pickle only for a model named in
``DRIFTLOOP_SERVING_UNPICKLE_MODELS`` (unpickling runs the file's code); ONNX needs
nothing. A refused file is a :class:`ModelLoadError`: the version served before it
keeps answering.

:class:`ModelLoader` is the service's model loader (a
:class:`~driftloop_serving.service_layer.ports.ModelLoaderPort`).
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


#: Modules whose types a skops file may hold without being named in the settings.
SKOPS_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")


@dataclass(frozen=True)
class LoadRules:
    """What a model file may do when it is loaded.

    Attributes:
        model: The registered model the folder is a version of.
        unpickle: Whether its pickle files may be loaded (an explicit opt-in).
        trusted_types: Types a skops file may hold beyond :data:`SKOPS_TRUSTED_MODULES`.
    """

    model: str = ""
    unpickle: bool = False
    trusted_types: frozenset[str] = frozenset()


def _skops_types(path: Path, rules: LoadRules) -> list[str]:
    """The types of a skops file, once each one is known to be allowed."""
    import skops.io  # type: ignore[import-untyped]

    needed: list[str] = list(skops.io.get_untrusted_types(file=path))
    refused = sorted(
        t
        for t in needed
        if not t.startswith(SKOPS_TRUSTED_MODULES) and t not in rules.trusted_types
    )
    if refused:
        raise ModelLoadError(
            f"the skops file holds types serving does not trust: {', '.join(refused)} "
            "(only scikit-learn, NumPy and SciPy types, and those named in "
            "DRIFTLOOP_SERVING_SKOPS_TRUSTED_TYPES)"
        )
    return needed


def _sklearn(folder: Path, flavor: dict[str, Any], rules: LoadRules) -> Predict:
    path = folder / str(flavor.get("pickled_model", "model.pkl"))
    fmt = str(flavor.get("serialization_format", "cloudpickle"))
    if fmt == "skops":
        import skops.io

        model = skops.io.load(path, trusted=_skops_types(path, rules))
    elif fmt in ("cloudpickle", "pickle"):
        if not rules.unpickle:
            raise ModelLoadError(
                f"{rules.model or 'the model'} is a {fmt} file, and unpickling runs code from "
                "the file: serving loads it only for a model named in "
                "DRIFTLOOP_SERVING_UNPICKLE_MODELS (or log it with skops or ONNX)"
            )
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


def _onnx(folder: Path, flavor: dict[str, Any], rules: LoadRules) -> Predict:
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


#: numpy types of MLflow's numeric column types (a column typed so gets its values so).
_NUMERIC = {
    "integer": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
}


def _pyfunc(folder: Path, flavor: dict[str, Any], rules: LoadRules) -> Predict:
    """Any other MLflow model, through ``mlflow.pyfunc.load_model`` and its flavor's code.

    A flavor's loader may unpickle (a custom ``PythonModel`` is cloudpickled) and so run
    code from the file: it needs the same opt-in as a pickle. A package the model needs
    that the serving image lacks is a load failure naming it.
    """
    if not rules.unpickle:
        raise ModelLoadError(
            f"{rules.model or 'the model'} has no flavor serving reads itself (sklearn, onnx); "
            "mlflow.pyfunc would load it with its flavor's code, which may unpickle and run "
            "code from the file: serving does so only for a model named in "
            "DRIFTLOOP_SERVING_UNPICKLE_MODELS"
        )
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(folder))
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"the model needs the Python package {error.name!r}, which is not installed where "
            "serving runs: install it in the serving image (the model's requirements.txt "
            "lists what it was logged with)"
        ) from error
    columns = _signature_columns(_read_mlmodel(folder))
    names = [column.name for column in columns] or None
    types = {column.name: _NUMERIC.get(column.type) for column in columns}

    def predict(matrix: np.ndarray[Any, Any]) -> Any:
        frame = pd.DataFrame(matrix, columns=names, copy=False)
        for name, numeric in types.items():
            if numeric is not None:  # the signature's own type: mlflow checks it
                frame[name] = frame[name].astype(numeric)
        return np.asarray(model.predict(frame))

    return predict


#: Fast paths first; any other flavor through ``mlflow.pyfunc``.
_LOADERS: dict[str, Callable[[Path, dict[str, Any], LoadRules], Predict]] = {
    "sklearn": _sklearn,
    "onnx": _onnx,
    "python_function": _pyfunc,
}


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((folder / MLMODEL).read_text()) or {}
    return found


@dataclass(frozen=True)
class ModelLoader:
    """The service's loader: the rules of the settings, applied per model.

    Attributes:
        unpickle_models: Models whose pickle files may be loaded.
        trusted_types: Types a skops file may hold beyond scikit-learn's, NumPy's, SciPy's.
    """

    unpickle_models: frozenset[str] = frozenset()
    trusted_types: frozenset[str] = frozenset()

    def __call__(self, folder: Path, /, *, model: str = "") -> Predictor:
        rules = LoadRules(
            model=model, unpickle=model in self.unpickle_models, trusted_types=self.trusted_types
        )
        return load_model(folder, rules)


def load_model(folder: Path, rules: LoadRules | None = None) -> Predictor:
    """Load the MLflow model in ``folder`` by ``rules`` (default: no pickle, skops'
    scikit-learn, NumPy and SciPy types only).

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
                predict = loader(folder, flavors[name], rules or LoadRules())
            except ModelLoadError:
                raise
            except Exception as error:
                raise ModelLoadError(f"Cannot load the {name} model: {error}") from error
            return Predictor(flavor=name, columns=_signature_columns(mlmodel), predict=predict)
    raise ModelLoadError(
        f"No supported flavor in {MLMODEL} (found {sorted(flavors)}; serving reads "
        f"{sorted(_LOADERS)})"
    )
