"""Any MLflow model serves through mlflow.pyfunc, behind the same opt-in as a pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel

from driftloop_serving.adapters.flavors import LoadRules, load_model
from driftloop_serving.domain.models import ModelLoadError
from driftloop_serving.domain.protocols import mlflow_batch

pytestmark = pytest.mark.unit


class Doubler(PythonModel):
    """2 * count + weight, and it insists on the signature's integer column."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        assert model_input["count"].dtype == np.int64
        return (2 * model_input["count"] + model_input["weight"]).to_numpy()


class NeedsAPackage(PythonModel):
    def load_context(self, context: Any) -> None:
        import driftloop_no_such_package  # type: ignore[import-not-found]  # noqa: F401

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input


def saved(tmp_path: Path, model: PythonModel, requirements: tuple[str, ...] = ()) -> Path:
    example = pd.DataFrame({"count": np.array([1, 2], dtype=np.int64), "weight": [0.5, 1.5]})
    folder = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=model,
        signature=infer_signature(example, np.array([2.5, 5.5])),
        pip_requirements=["mlflow-skinny", *requirements],
    )
    return folder


def test_a_custom_pyfunc_model_is_refused_without_the_opt_in(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="DRIFTLOOP_SERVING_UNPICKLE_MODELS"):
        load_model(saved(tmp_path, Doubler()), LoadRules(model="doubler"))


def test_with_the_opt_in_it_predicts_with_the_signatures_column_types(tmp_path: Path) -> None:
    predictor = load_model(saved(tmp_path, Doubler()), LoadRules(model="doubler", unpickle=True))

    assert (predictor.flavor, predictor.loader, predictor.typed) == (
        "python_function",
        "mlflow.pyfunc",
        True,
    )
    assert [(c.name, c.type) for c in predictor.columns] == [
        ("count", "long"),
        ("weight", "double"),
    ]
    batch = mlflow_batch({"inputs": [[3, 0.25], [10, 1.0]]}, predictor.columns)
    answer = predictor.predict(batch)
    assert answer.tolist() == [6.25, 21.0]
    assert predictor.predict_proba is None  # a PythonModel has no raw model to ask


def test_a_package_the_model_needs_and_serving_lacks_is_a_load_failure_naming_it(
    tmp_path: Path,
) -> None:
    folder = saved(tmp_path, NeedsAPackage(), ("driftloop-no-such-package==1.0",))
    with pytest.raises(ModelLoadError, match="'driftloop_no_such_package'") as raised:
        load_model(folder, LoadRules(model="m", unpickle=True))
    assert "not installed here: driftloop-no-such-package==1.0" in str(raised.value)
    assert "mlflow-skinny" not in str(raised.value)  # installed: not named
