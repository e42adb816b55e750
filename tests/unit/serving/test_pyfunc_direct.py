"""The pyfunc shortcut (``adapters/pyfunc_direct.py``) answers exactly as
``PyFuncModel.predict``, and is used only where MLflow's enforcement has nothing to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel

from driftloop_serving.adapters.flavors import LoadRules, load_model
from driftloop_serving.adapters.pyfunc_direct import direct_predict
from driftloop_serving.domain.models import Column

pytestmark = pytest.mark.unit

COLUMNS = [f"f{i}" for i in range(5)]


class Seen(PythonModel):
    """Answers the row sums, and keeps the dtypes and columns of what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[str], list[str]]] = []

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        self.seen.append((list(model_input.columns), [str(t) for t in model_input.dtypes]))
        return model_input.to_numpy().sum(axis=1)


def saved(tmp_path: Path) -> Path:
    example = pd.DataFrame(np.ones((2, 5)), columns=COLUMNS)
    folder = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=Seen(),
        signature=infer_signature(example, np.ones(2)),
        pip_requirements=["mlflow-skinny"],
    )
    return folder


def test_the_shortcut_was_checked_against_this_mlflow() -> None:
    assert mlflow.__version__.startswith("3.17."), (
        f"mlflow is {mlflow.__version__}; re-check driftloop_serving.adapters.pyfunc_direct "
        "(PyFuncModel._predict, _predict_fn, the metadata predicates) and update this pin"
    )


def test_it_answers_as_predict_does_with_the_same_frame(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    predictor = load_model(folder, LoadRules(model="m", unpickle=True))
    reference = mlflow.pyfunc.load_model(str(folder))
    matrix = np.random.default_rng(3).normal(size=(7, 5))
    expected = np.asarray(reference.predict(pd.DataFrame(matrix, columns=COLUMNS)))

    assert direct_predict(reference, [Column(n, "double") for n in COLUMNS]) is not None
    np.testing.assert_array_equal(predictor.predict(matrix), expected)
    seen = reference.unwrap_python_model().seen[-1]
    assert seen == (COLUMNS, ["float64"] * 5)


def test_a_matrix_with_nan_takes_mlflows_own_path(tmp_path: Path) -> None:
    predictor = load_model(saved(tmp_path), LoadRules(model="m", unpickle=True))
    matrix = np.ones((2, 5))
    matrix[1, 2] = np.nan
    answer = predictor.predict(matrix)

    assert answer[0] == 5.0
    assert np.isnan(answer[1])


def test_it_is_not_used_for_mixed_or_optional_columns(tmp_path: Path) -> None:
    reference = mlflow.pyfunc.load_model(str(saved(tmp_path)))

    assert direct_predict(reference, [Column("a", "double"), Column("b", "long")]) is None
    assert direct_predict(reference, [Column("a", "double", required=False)]) is None
    assert direct_predict(reference, [Column("a", "string")]) is None
    assert direct_predict(object(), [Column("a", "double")]) is None
