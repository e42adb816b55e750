"""The sklearn flavor's fast path for linear models answers exactly as sklearn does."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import (  # type: ignore[import-untyped]
    LinearRegression,
    LogisticRegression,
    Ridge,
)
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from driftloop_serving.domain.flavors import load_model

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(3)
FRAME = pd.DataFrame(RNG.normal(size=(300, 6)), columns=[f"c{i}" for i in range(6)])
BINARY = (FRAME["c0"] - FRAME["c1"] > 0).map({True: "yes", False: "no"})
THREE = np.digitize(FRAME["c2"] + FRAME["c3"], [-0.5, 0.5])
TARGET = FRAME @ np.arange(6) + 0.5


def saved(folder: Path, model: Any) -> Path:
    """``model`` as an MLflow sklearn folder (pickle format)."""
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n"
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
    # The fast path is a closure of flavors._linear; the others keep sklearn's predict.
    assert ("_linear" in predictor.predict.__qualname__) is fast


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
