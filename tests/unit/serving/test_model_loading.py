"""Loading never trusts the file: skops types are allow-listed, pickle needs an opt-in."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import skops.io  # type: ignore[import-untyped]
from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from driftloop_serving.adapters.flavors import ModelLoader, load_model
from driftloop_serving.domain.models import ModelLoadError

pytestmark = pytest.mark.unit

X = np.arange(40, dtype=float).reshape(20, 2)
Y = (X[:, 0] > 19).astype(int)


class Smuggled(BaseEstimator):  # type: ignore[misc]
    """A type of no trusted library: loading it would import and build it."""

    def fit(self, x: object, y: object) -> Smuggled:
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))


def folder_of(tmp_path: Path, model: object, fmt: str) -> Path:
    folder = tmp_path / fmt
    folder.mkdir()
    name = "model.skops" if fmt == "skops" else "model.pkl"
    if fmt == "skops":
        skops.io.dump(model, folder / name)
    else:
        (folder / name).write_bytes(pickle.dumps(model))
    (folder / "MLmodel").write_text(
        f"flavors:\n  sklearn:\n    pickled_model: {name}\n    serialization_format: {fmt}\n"
    )
    return folder


def test_a_skops_file_of_scikit_learn_types_loads_and_predicts(tmp_path: Path) -> None:
    tree = DecisionTreeClassifier().fit(X, Y)  # holds sklearn.tree._tree.Tree, not "safe"
    predictor = load_model(folder_of(tmp_path, tree, "skops"))
    assert list(predictor.predict(X)) == list(Y)


def test_a_skops_file_with_a_type_of_no_trusted_library_is_refused(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, Smuggled(), "skops")
    with pytest.raises(ModelLoadError, match=r"does not trust: .*Smuggled"):
        load_model(folder)
    # Named in the settings, it is the operator's decision.
    name = f"{Smuggled.__module__}.Smuggled"
    loaded = ModelLoader(trusted_types=frozenset({name}))(folder, model="m")
    assert list(loaded.predict(X)) == [0.0] * len(X)


def test_a_pickle_is_refused_unless_its_model_opted_in(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, DecisionTreeClassifier().fit(X, Y), "pickle")
    loader = ModelLoader(unpickle_models=frozenset({"legacy"}))
    with pytest.raises(ModelLoadError, match="DRIFTLOOP_SERVING_UNPICKLE_MODELS"):
        loader(folder, model="iris")
    assert list(loader(folder, model="legacy").predict(X)) == list(Y)
