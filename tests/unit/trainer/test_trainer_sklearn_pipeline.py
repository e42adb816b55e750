"""The generic scikit-learn pipeline: named feature columns, categorical columns one-hot
encoded, class weights, and parameters checked and bounded."""

from __future__ import annotations

import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_trainer.domain.jobs import JobSpec, StageFailed
from driftloop_trainer.pipelines import iris
from driftloop_trainer.pipelines.holdout import TIMESTAMP
from driftloop_trainer.pipelines.sklearn import (
    MIN_REFERENCE_ROWS,
    categorical_columns,
    estimator,
    feature_columns,
    reference_sample,
    train,
)

pytestmark = pytest.mark.unit

FRAME = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 4, 5, 6, 7, 8],
        "spend": [10.0, 12.0, 50.0, 55.0, 11.0, 60.0, 9.0, 58.0],
        "plan": ["basic", "basic", "gold", "gold", "basic", "gold", "basic", "gold"],
        "score_from_elsewhere": [0.1] * 8,
        "churned": ["no", "no", "yes", "yes", "no", "yes", "no", "yes"],
        "event_timestamp": pd.date_range("2030-01-01", periods=8, freq="h", tz="UTC"),
    }
)


def test_named_features_are_the_only_columns_fitted_on() -> None:
    spec = JobSpec(label="churned", features=["customers:spend", "customers:plan"])
    assert feature_columns(FRAME, spec) == ["spend", "plan"]
    assert feature_columns(FRAME, spec, {"features": "spend"}) == ["spend"]
    # Unnamed: every numeric column but keys, time and the label (said in the docstring).
    assert feature_columns(FRAME, JobSpec(label="churned")) == ["spend", "score_from_elsewhere"]


def test_a_named_feature_the_data_lacks_fails_the_job_naming_it() -> None:
    spec = JobSpec(label="churned", features=["customers:tenure"])
    with pytest.raises(StageFailed, match="tenure") as failed:
        feature_columns(FRAME, spec)
    assert failed.value.error_type == "MissingFeature"


def test_categorical_columns_are_one_hot_encoded_and_unseen_categories_ignored() -> None:
    columns = ["spend", "plan"]
    assert categorical_columns(FRAME, columns) == ["plan"]
    # Codes stored as numbers are categorical when the parameter says so.
    assert categorical_columns(FRAME, columns, {"categorical": "spend"}) == ["spend", "plan"]
    with pytest.raises(StageFailed, match="customer_id"):
        categorical_columns(FRAME, columns, {"categorical": "customer_id"})
    model = estimator({"class_weight": "balanced"}, ["plan"])
    model.fit(FRAME[columns], FRAME["churned"])
    unseen = pd.DataFrame({"spend": [57.0, 10.0], "plan": ["platinum", "basic"]})
    assert list(model.predict(unseen)) == ["yes", "no"]
    assert model.named_steps["model"].class_weight == "balanced"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"estimator": "svm"}, "unknown estimator"),
        ({"max_iter": "0"}, "max_iter"),
        ({"max_iter": "2.5"}, "whole number"),
        ({"C": "lots"}, "C="),
        ({"estimator": "random_forest", "n_estimators": "1000000"}, "n_estimators"),
        ({"class_weight": "heavy"}, "class_weight"),
    ],
)
def test_bad_parameters_fail_the_setup_with_the_reason(
    parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(StageFailed, match=message) as failed:
        estimator(parameters)
    assert failed.value.error_type == "BadParameter"


def test_the_old_entry_point_name_still_runs_the_generic_pipeline() -> None:
    assert iris.train is train
    assert JobSpec().entry_point == "driftloop_trainer.pipelines.sklearn:train"


def test_a_retrained_versions_reference_comes_from_the_rows_since_the_change_began() -> None:
    start = pd.Timestamp("2026-03-01T00:00:00Z")
    frame = pd.DataFrame(
        {
            "x": [float(i) for i in range(300)],
            TIMESTAMP: [start + pd.Timedelta(minutes=i) for i in range(300)],
        }
    )
    training, evaluation = frame.iloc[:240], frame.iloc[240:]
    onset = (start + pd.Timedelta(minutes=200)).isoformat()

    reference, where = reference_sample(training, evaluation, ["x"], rows=500, onset=onset)
    # The 100 rows from minute 200 on, held-out ones included, and nothing older.
    assert list(reference["x"]) == [float(i) for i in range(200, 300)]
    assert where == f"since {pd.Timestamp(onset).isoformat()}"

    newest, where = reference_sample(training, evaluation, ["x"], rows=500, onset="")
    assert list(newest["x"]) == [float(i) for i in range(240)]
    assert where == "newest training rows"
    # Too few rows since the onset (fewer than MIN_REFERENCE_ROWS): the newest training rows.
    late = (start + pd.Timedelta(minutes=300 - MIN_REFERENCE_ROWS + 1)).isoformat()
    fallback, where = reference_sample(training, evaluation, ["x"], rows=100, onset=late)
    assert list(fallback["x"]) == [float(i) for i in range(140, 240)]
    assert where == "newest training rows"
