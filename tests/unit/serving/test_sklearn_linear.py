"""The sklearn flavor's fast path for linear models answers exactly as sklearn does.

``driftloop_serving.adapters.sklearn_linear`` reads scikit-learn's private
``sklearn.linear_model._base``: the first test pins the version it was checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import sklearn  # type: ignore[import-untyped]
import skops.io  # type: ignore[import-untyped]
from sklearn.linear_model import (  # type: ignore[import-untyped]
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]
from sklearn.svm import LinearSVC  # type: ignore[import-untyped]

from driftloop_serving.adapters import sklearn_linear
from driftloop_serving.adapters.flavors import load_model

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(3)
FRAME = pd.DataFrame(RNG.normal(size=(300, 6)), columns=[f"c{i}" for i in range(6)])
BINARY = (FRAME["c0"] - FRAME["c1"] > 0).map({True: "yes", False: "no"})
THREE = np.digitize(FRAME["c2"] + FRAME["c3"], [-0.5, 0.5])
TARGET = FRAME @ np.arange(6) + 0.5


def test_the_fast_path_was_checked_against_this_scikit_learn() -> None:
    assert sklearn.__version__.startswith("1.9."), (
        f"scikit-learn {sklearn.__version__}: re-check adapters/sklearn_linear.py against "
        "the new scikit-learn (LinearClassifierMixin.predict and decision_function, "
        "coef_ and intercept_) and update this pin"
    )
    from sklearn.linear_model._base import (  # type: ignore[import-untyped]
        LinearClassifierMixin,
    )

    assert LogisticRegression.predict is LinearClassifierMixin.predict
    assert LogisticRegression.decision_function is LinearClassifierMixin.decision_function


@pytest.mark.parametrize(
    ("model", "labels"),
    [
        (LogisticRegression(max_iter=500), BINARY),
        (LogisticRegression(max_iter=500), THREE),
        (SGDClassifier(random_state=0), BINARY),
        (SGDClassifier(random_state=0), THREE),
        (LinearSVC(), BINARY),
    ],
    ids=["logistic-binary", "logistic-multiclass", "sgd-binary", "sgd-multiclass", "linear-svc"],
)
def test_the_fast_path_answers_what_predict_answers(model: Any, labels: Any) -> None:
    model.fit(FRAME.to_numpy(), labels)
    fast = sklearn_linear.linear_predict(model, model.predict)
    assert fast is not None
    for rows in (1, 2, 50):
        matrix = RNG.normal(size=(rows, 6))
        answer = fast(matrix)
        expected = model.predict(matrix)
        assert answer.dtype == expected.dtype
        assert np.array_equal(answer, expected)


def saved(folder: Path, model: Any) -> Path:
    """``model`` as an MLflow sklearn folder (skops format, as MLflow 3 writes it)."""
    folder.mkdir()
    skops.io.dump(model, folder / "model.skops")
    (folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n"
    )
    return folder


@pytest.mark.parametrize(
    ("model", "labels", "fast"),
    [
        (LogisticRegression(max_iter=500), BINARY, True),
        (LogisticRegression(max_iter=500), THREE, True),
        (LinearRegression(), TARGET, False),
        (Ridge(alpha=2.0), TARGET, False),
        (make_pipeline(StandardScaler(), LogisticRegression()), BINARY, False),
    ],
    ids=["binary", "multiclass", "linear-regression", "ridge", "pipeline"],
)
def test_served_predictions_equal_sklearn_predict_on_a_dataframe(
    tmp_path: Path, model: Any, labels: Any, fast: bool
) -> None:
    model.fit(FRAME, labels)
    predictor = load_model(saved(tmp_path / "m", model))
    matrix = RNG.normal(size=(50, 6))
    expected = model.predict(pd.DataFrame(matrix, columns=FRAME.columns))
    assert np.array_equal(predictor.predict(matrix), expected)
    one = model.predict(pd.DataFrame(matrix[:1], columns=FRAME.columns))
    assert np.array_equal(predictor.predict(matrix[:1]), one)
    # The fast path is a closure of sklearn_linear; the others keep sklearn's predict.
    assert (predictor.predict.__module__ == sklearn_linear.__name__) is fast


def test_a_row_with_nan_still_gets_sklearns_error(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=500).fit(FRAME, BINARY)
    predictor = load_model(saved(tmp_path / "m", model))
    matrix = RNG.normal(size=(1, 6))
    matrix[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(matrix)


def test_a_row_of_the_wrong_width_still_gets_sklearns_error(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=500).fit(FRAME, BINARY)
    predictor = load_model(saved(tmp_path / "m", model))
    with pytest.raises(ValueError, match="Shape of passed values"):
        predictor.predict(RNG.normal(size=(1, 5)))
