"""A speed shortcut past ``mlflow.pyfunc``: a loaded model's predict function without
MLflow's per-call schema enforcement, where serving has done that work already.

What it replaces: ``PyFuncModel.predict`` enforces the model's input schema on every
call (``mlflow.models.utils._enforce_schema``: it rebuilds the DataFrame column by
column), then calls the flavor's predict function (``PyFuncModel._predict_fn``). For a
1-row request to a custom ``PythonModel`` with 20 double columns the enforcement is
about 3/4 of the call (cProfile; bench/README.md has the served figures).

Why it is safe: it is used only for a model whose signature is columns of one numeric
type, all required, with no params schema and no signature taken from type hints or an
input example; serving hands it a DataFrame of exactly the signature's columns, in its
order, of that dtype, which is what the enforcement would give. A matrix holding NaN
goes through ``PyFuncModel.predict`` (and its errors), as does every other model.

It reads ``PyFuncModel._predict_fn`` and the model metadata's private predicates:
``tests/unit/serving/test_pyfunc_direct.py`` pins the MLflow version it was checked
against and checks that it answers exactly as ``predict`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from driftloop_serving.domain.models import Column

__all__ = ["direct_predict", "has_nan"]

#: The column types whose enforcement is a dtype check (and a cast serving already made).
_NUMERIC = frozenset({"double", "float", "long", "integer", "boolean"})


def direct_predict(model: Any, columns: Sequence[Column]) -> Callable[[Any], Any] | None:
    """The flavor's predict function of a loaded ``PyFuncModel``, when calling it past
    the schema enforcement is safe for inputs typed by ``columns``; else None."""
    kinds = {column.type for column in columns}
    if len(kinds) != 1 or not kinds <= _NUMERIC or not all(c.required for c in columns):
        return None
    metadata = getattr(model, "metadata", None)
    predict_fn: Callable[[Any], Any] | None = getattr(model, "_predict_fn", None)
    if metadata is None or not callable(predict_fn):
        return None
    try:
        if (
            metadata.get_params_schema() is not None
            or metadata._is_signature_from_type_hint()
            or metadata._is_type_hint_from_example()
        ):
            return None
    except AttributeError:  # another MLflow: keep its own path
        return None
    return predict_fn


def has_nan(matrix: np.ndarray[Any, Any]) -> bool:
    """Whether a float matrix holds a NaN (MLflow's own path decides what it means)."""
    return matrix.dtype.kind == "f" and bool(np.isnan(matrix).any())
