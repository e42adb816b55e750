"""A speed shortcut past scikit-learn: a plain linear classifier's ``predict`` without its checks.

What it replaces: ``LinearClassifierMixin.predict`` (``LogisticRegression``,
``SGDClassifier``, ``LinearSVC``, ...), which validates its input on every call
(``check_array``, feature names through a DataFrame) before computing
``X @ coef_.T + intercept_``. For a 1-row request the validation is most of the
model's time (bench/README.md has the figures).

Why it is safe: the matrices served are already 2-D float64 in the fitted column
order, so for the exact classes whose ``predict`` and ``decision_function`` are
sklearn's linear ones (no override) the same expression is computed here, giving
the same numbers. Anything unusual (another width, NaN or infinity, a sparse
``coef_``) goes through ``checked``, which keeps sklearn's checks and errors.

It reads ``sklearn.linear_model._base`` (private): ``tests/unit/serving/
test_sklearn_linear.py`` pins the scikit-learn version it was checked against and
checks that it answers exactly as ``predict`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Predict", "linear_predict"]

Predict = Callable[[np.ndarray[Any, Any]], Any]


def linear_predict(model: Any, checked: Predict) -> Predict | None:
    """sklearn's own arithmetic for ``model``, or ``None`` when it is no plain linear classifier.

    Args:
        model: A fitted estimator.
        checked: sklearn's ``predict`` (through a DataFrame when fitted on one), for
            every input the shortcut does not take.

    Returns:
        The fast predict, or ``None`` when the model is not such a linear classifier
        (regressors such as ``LinearRegression`` override ``predict`` and keep sklearn's).
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
