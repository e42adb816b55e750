"""Loading an MLflow model folder (``MLmodel`` + files) into something that predicts.

Two flavors are read without MLflow itself (the fast paths): ``sklearn`` (skops, as
MLflow 3 writes it, or cloudpickle/pickle) and ``onnx`` (onnxruntime). Any other
model (XGBoost, LightGBM, a custom ``mlflow.pyfunc.PythonModel`` ...) loads through
``mlflow.pyfunc.load_model`` from the same checksum-verified folder, in serving's own
environment: the packages the model needs (its ``requirements.txt``) must be
installed in the serving image, and one that is missing is a load failure naming it.
The model's input signature, when it has one, names, orders and types the columns:
a model whose columns are all floating point predicts from a float matrix (a plain
linear classifier through :mod:`driftloop_serving.adapters.sklearn_linear`), any
other from a :class:`~driftloop_serving.domain.signature.Batch` typed by it, given
to the model as a DataFrame (or its tensors). ``predict_proba`` is offered when the
model (or the raw model under a pyfunc) has one.

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

import importlib.metadata
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import yaml

from driftloop_serving.adapters.pyfunc_direct import direct_predict, has_nan
from driftloop_serving.adapters.sklearn_linear import Predict, linear_predict
from driftloop_serving.domain.models import ModelLoadError, Predictor
from driftloop_serving.domain.signature import (
    Batch,
    needs_types,
    signature_columns,
    signature_output_type,
)

MLMODEL = "MLmodel"


@dataclass(frozen=True)
class _Loaded:
    """What a flavor's loader gives: the model's predict, and what serves it."""

    predict: Callable[[Any], Any]  # a float matrix, or a Batch when typed
    loader: str
    predict_proba: Callable[[Any], Any] | None = None
    classes: tuple[Any, ...] = ()


def _frame(batch: Batch) -> Any:
    """A typed batch as the DataFrame a model of a column signature takes."""
    return pd.DataFrame(batch.columns, copy=False)


def _model_input(batch: Batch) -> Any:
    """A typed batch as a pyfunc takes it: a DataFrame, or its tensor(s)."""
    if not batch.tensor:
        return _frame(batch)
    if len(batch.columns) == 1:
        return next(iter(batch.columns.values()))
    return dict(batch.columns)


def _classes(model: Any) -> tuple[Any, ...]:
    found = getattr(model, "classes_", None)
    return tuple(np.asarray(found).tolist()) if found is not None else ()


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


def _sklearn(folder: Path, flavor: dict[str, Any], rules: LoadRules, typed: bool) -> _Loaded:
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
    loader = "skops" if fmt == "skops" else "pickle"
    offers_proba = hasattr(model, "predict_proba")
    if typed:
        return _Loaded(
            predict=lambda batch: model.predict(_frame(batch)),
            loader=loader,
            predict_proba=(lambda batch: model.predict_proba(_frame(batch)))
            if offers_proba
            else None,
            classes=_classes(model),
        )
    names = getattr(model, "feature_names_in_", None)
    predict: Predict = model.predict
    as_fitted: Callable[[Any], Any] = lambda matrix: matrix  # noqa: E731
    if names is not None:
        # Fitted on a DataFrame: give it one with the fitted names, so it does not warn.
        columns = pd.Index(list(names))
        as_fitted = lambda matrix: pd.DataFrame(matrix, columns=columns, copy=False)  # noqa: E731
        predict = lambda matrix: model.predict(as_fitted(matrix))  # noqa: E731
    proba = (lambda matrix: model.predict_proba(as_fitted(matrix))) if offers_proba else None
    fast = linear_predict(model, predict)
    return _Loaded(
        predict=fast or predict,
        loader="sklearn-linear" if fast is not None else loader,
        predict_proba=proba,
        classes=_classes(model),
    )


#: numpy types of ONNX tensor types.
_ONNX_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def _onnx(folder: Path, flavor: dict[str, Any], rules: LoadRules, typed: bool) -> _Loaded:
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
    if typed:
        dtypes = {item.name: _ONNX_TYPES.get(item.type, np.float32) for item in inputs}

        def by_name(batch: Batch) -> Any:
            arrays = list(batch.columns.values())
            feed = {}
            for index, item in enumerate(inputs):
                array = batch.columns.get(item.name)
                if array is None:  # an unnamed tensor signature: its inputs in order
                    array = arrays[index]
                if array.ndim == 1:
                    array = array.reshape(-1, 1)
                feed[item.name] = array.astype(dtypes[item.name], copy=False)
            return session.run([output], feed)[0]

        return _Loaded(predict=by_name, loader="onnxruntime")
    dtypes = {
        item.name: np.float64 if item.type == "tensor(double)" else np.float32 for item in inputs
    }
    if len(inputs) == 1:
        name = inputs[0].name
        dtype = dtypes[name]
        return _Loaded(
            predict=lambda matrix: session.run([output], {name: matrix.astype(dtype, copy=False)})[
                0
            ],
            loader="onnxruntime",
        )

    def by_column(matrix: np.ndarray[Any, Any]) -> Any:
        feed = {
            item.name: matrix[:, i : i + 1].astype(dtypes[item.name])
            for i, item in enumerate(inputs)
        }
        return session.run([output], feed)[0]

    return _Loaded(predict=by_column, loader="onnxruntime")


#: numpy types of MLflow's numeric column types (a column typed so gets its values so).
_NUMERIC = {
    "integer": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
}


def _requirements_missing(folder: Path) -> list[str]:
    """The model's ``requirements.txt`` packages that are not installed here."""
    try:
        lines = (folder / "requirements.txt").read_text().splitlines()
    except OSError:
        return []
    missing = []
    for line in lines:
        found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if found is None or line.lstrip().startswith(("#", "-")):
            continue
        try:
            importlib.metadata.version(found.group(1))
        except importlib.metadata.PackageNotFoundError:
            missing.append(line.strip())
    return missing


def _pyfunc(folder: Path, flavor: dict[str, Any], rules: LoadRules, typed: bool) -> _Loaded:
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
    except ImportError as error:
        missing = _requirements_missing(folder)
        listed = (
            f"; of its requirements.txt, not installed here: {', '.join(missing)}"
            if missing
            else ""
        )
        raise ModelLoadError(
            f"the model needs the Python package {error.name or str(error)!r}, which is not "
            "installed where serving runs: install the model's requirements in the serving "
            f"image{listed}"
        ) from error
    raw: Any = None
    try:
        raw = model.get_raw_model()
    except Exception:  # a flavor (a PythonModel) with no raw model: no predict_proba
        raw = None
    offers_proba = raw is not None and callable(getattr(raw, "predict_proba", None))
    if typed:
        return _Loaded(
            predict=lambda batch: np.asarray(model.predict(_model_input(batch))),
            loader="mlflow.pyfunc",
            predict_proba=(lambda batch: raw.predict_proba(_model_input(batch)))
            if offers_proba
            else None,
            classes=_classes(raw),
        )
    columns = signature_columns(_read_mlmodel(folder))
    names = [column.name for column in columns] or None
    types = {column.name: _NUMERIC.get(column.type) for column in columns}

    kinds = set(types.values())
    # Every column of one numeric type (20 doubles, say): one conversion of the matrix,
    # one block in the frame, instead of a pandas assignment per column (2/3 of a 1-row
    # call's time, measured with cProfile on a 20-double pyfunc model).
    uniform = kinds.pop() if len(kinds) == 1 and None not in kinds else None

    def frame(matrix: np.ndarray[Any, Any]) -> Any:
        if uniform is not None:
            return pd.DataFrame(np.asarray(matrix, dtype=uniform), columns=names, copy=False)
        found = pd.DataFrame(matrix, columns=names, copy=False)
        for name, numeric in types.items():
            if numeric is not None:  # the signature's own type: mlflow checks it
                found[name] = found[name].astype(numeric)
        return found

    direct = direct_predict(model, columns) if uniform is not None else None

    def predict(matrix: np.ndarray[Any, Any]) -> Any:
        if direct is not None and not has_nan(matrix):
            return np.asarray(direct(frame(matrix)))
        return np.asarray(model.predict(frame(matrix)))

    return _Loaded(
        predict=predict,
        loader="mlflow.pyfunc",
        predict_proba=(lambda matrix: raw.predict_proba(frame(matrix))) if offers_proba else None,
        classes=_classes(raw),
    )


#: Fast paths first; any other flavor through ``mlflow.pyfunc``.
_LOADERS: dict[str, Callable[[Path, dict[str, Any], LoadRules, bool], _Loaded]] = {
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
    columns = signature_columns(mlmodel or {})
    typed = needs_types(columns)
    for name, loader in _LOADERS.items():
        if name in flavors:
            try:
                loaded = loader(folder, flavors[name], rules or LoadRules(), typed)
            except ModelLoadError:
                raise
            except Exception as error:
                raise ModelLoadError(f"Cannot load the {name} model: {error}") from error
            return Predictor(
                flavor=name,
                columns=columns,
                predict=loaded.predict,
                loader=loaded.loader,
                typed=typed,
                predict_proba=loaded.predict_proba,
                classes=loaded.classes,
                output_type=signature_output_type(mlmodel or {}),
            )
    raise ModelLoadError(
        f"No supported flavor in {MLMODEL} (found {sorted(flavors)}; serving reads "
        f"{sorted(_LOADERS)})"
    )
