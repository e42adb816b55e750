"""MLflow 3 logged models through the official mlflow client: log_model, load, get, search."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sqlalchemy import insert

from driftloop_kit.db import Database
from driftloop_kit.migrations import upgrade_async
from driftloop_kit.testing import auth_headers
from driftloop_tracking.adapters import tables
from driftloop_tracking.adapters.logged_models import SqlLoggedModelStore
from driftloop_tracking.adapters.store import SqlTrackingStore
from driftloop_tracking.domain.logged_models import DatasetFilter, LoggedModelMetric, ModelOrderBy
from driftloop_tracking.entrypoints.app import MIGRATIONS
from driftloop_tracking.service_layer.logged_models import LoggedModels
from tests.fakes.common import unique

pytestmark = pytest.mark.integration

MODELS = "/api/2.0/mlflow/logged-models"


def error_code(error: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(error.value.error_code)


def log_sklearn(model: LogisticRegression) -> Any:
    """``mlflow.sklearn.log_model(model, name="model")`` in the active run.

    cloudpickle rather than MLflow 3's default skops, which is not a test dependency;
    requirements given, so that the client does not spend seconds inferring them.
    """
    return mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=["scikit-learn", "cloudpickle"],
    )


def trained() -> tuple[LogisticRegression, np.ndarray[Any, Any]]:
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(features, labels), features


def test_a_sklearn_model_logged_in_a_run_loads_back_by_model_uri_and_runs_uri(
    tracking_url: str,
) -> None:
    mlflow.set_tracking_uri(tracking_url)
    client = MlflowClient(tracking_url)
    experiment_id = mlflow.set_experiment(unique("models")).experiment_id
    model, features = trained()
    expected = model.predict(features)

    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 500)
        info = log_sklearn(model)
    run_id = run.info.run_id

    assert info.model_uri == f"models:/{info.model_id}"
    by_model_uri = mlflow.pyfunc.load_model(info.model_uri)
    by_runs_uri = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(by_model_uri.predict(features), expected)
    np.testing.assert_array_equal(by_runs_uri.predict(features), expected)

    logged = client.get_logged_model(info.model_id)
    assert logged.name == "model"
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run_id
    assert logged.experiment_id == experiment_id
    assert logged.artifact_location == (
        f"mlflow-artifacts:/{experiment_id}/models/{info.model_id}/artifacts"
    )
    assert logged.params["max_iter"] == "500", "log_model copies the run's params"


def test_the_model_files_are_listed_under_the_models_artifact_root(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_experiment(unique("listing"))
    model, _ = trained()
    with mlflow.start_run():
        info = log_sklearn(model)

    response = httpx.get(
        f"{tracking_url}{MODELS}/{info.model_id}/artifacts/directories", headers=auth_headers()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["root_uri"].endswith(f"/models/{info.model_id}/artifacts")
    files = {f["path"]: f for f in body["files"]}
    assert "MLmodel" in files
    assert files["MLmodel"]["is_dir"] is False
    assert int(files["MLmodel"]["file_size"]) > 0

    traversal = httpx.get(
        f"{tracking_url}{MODELS}/{info.model_id}/artifacts/directories",
        params={"artifact_directory_path": "../../.."},
        headers=auth_headers(),
    )
    assert traversal.status_code == 400
    assert traversal.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_logged_models_are_created_tagged_finalized_searched_and_deleted(
    tracking_url: str,
) -> None:
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("search"))
    forest = client.create_logged_model(
        experiment_id,
        name="forest",
        params={"n_estimators": "100"},
        tags={"team": "fraud"},
        model_type="classifier",
    )
    linear = client.create_logged_model(experiment_id, name="linear", tags={"team": "risk"})
    unnamed = client.create_logged_model(experiment_id)

    assert forest.status == LoggedModelStatus.PENDING
    assert forest.params == {"n_estimators": "100"}
    assert forest.tags == {"team": "fraud"}
    assert forest.model_type == "classifier"
    assert unnamed.name, "a model created without a name gets a random one"

    client.finalize_logged_model(forest.model_id, LoggedModelStatus.READY)
    client.set_logged_model_tags(forest.model_id, {"stage": "candidate"})
    client.log_model_params(forest.model_id, {"max_depth": "8"})
    forest = client.get_logged_model(forest.model_id)
    assert forest.status == LoggedModelStatus.READY
    assert forest.tags == {"team": "fraud", "stage": "candidate"}
    assert forest.params == {"n_estimators": "100", "max_depth": "8"}

    def names(filter_string: str | None = None, **kwargs: Any) -> list[str]:
        page = client.search_logged_models([experiment_id], filter_string=filter_string, **kwargs)
        return [m.name for m in page]

    assert names() == [unnamed.name, "linear", "forest"], "newest first"
    assert names("name = 'forest'") == ["forest"]
    assert names("tags.team = 'risk'") == ["linear"]
    assert names("params.n_estimators = '100'") == ["forest"]
    assert names("status = 'READY'") == ["forest"]
    assert names("name LIKE 'FOR%'") == [], "LIKE is case-sensitive"
    assert names("name ILIKE 'FOR%'") == ["forest"]
    assert names("name IN ('forest', 'linear')", order_by=[{"field_name": "name"}]) == [
        "forest",
        "linear",
    ]
    assert names(
        "tags.team = 'fraud' OR tags.team = 'risk'", order_by=[{"field_name": "name"}]
    ) == [
        "forest",
        "linear",
    ]

    first = client.search_logged_models([experiment_id], max_results=2)
    assert len(first) == 2
    assert first.token
    second = client.search_logged_models([experiment_id], max_results=2, page_token=first.token)
    assert [m.model_id for m in second] == [forest.model_id]
    assert second.token is None

    client.delete_logged_model_tag(forest.model_id, "stage")
    assert client.get_logged_model(forest.model_id).tags == {"team": "fraud"}

    client.delete_logged_model(linear.model_id)
    assert names("tags.team = 'risk'") == []
    with pytest.raises(MlflowException) as error:
        client.get_logged_model(linear.model_id)
    assert error_code(error) == "RESOURCE_DOES_NOT_EXIST"


def test_run_metrics_are_linked_to_the_model_logged_at_their_step(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    client = MlflowClient(tracking_url)
    experiment_id = mlflow.set_experiment(unique("metrics")).experiment_id
    model, _ = trained()
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.97)
        info = log_sklearn(model)
    run_id = run.info.run_id

    metrics = client.get_logged_model(info.model_id).metrics or []
    assert [(m.key, m.value, m.run_id) for m in metrics] == [("accuracy", 0.97, run_id)]
    history = client.get_metric_history(run_id, "accuracy")
    assert [m.value for m in history] == [0.97], "linking does not log the value twice"

    found = client.search_logged_models([experiment_id], filter_string="metrics.accuracy > 0.9")
    assert [m.model_id for m in found] == [info.model_id]
    assert not client.search_logged_models([experiment_id], filter_string="metrics.accuracy < 0.9")


def test_models_are_ordered_by_their_latest_metric_value(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("order"))
    run = client.create_run(experiment_id)
    scores = {"low": 0.5, "high": 0.9, "mid": 0.7}
    model_ids = {}
    for name, score in scores.items():
        model_ids[name] = client.create_logged_model(experiment_id, name=name).model_id
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("f1", score, 1_700_000_000_000, 0, model_id=model_ids[name])],
        )
    client.create_logged_model(experiment_id, name="unscored")

    by_f1 = client.search_logged_models(
        [experiment_id], order_by=[{"field_name": "metrics.f1", "ascending": False}]
    )
    assert [m.name for m in by_f1] == ["high", "mid", "low", "unscored"], "missing values last"


def test_a_run_records_the_model_it_produced_as_an_output(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    client = MlflowClient(tracking_url)
    mlflow.set_experiment(unique("outputs"))
    model, _ = trained()
    with mlflow.start_run() as run:
        info = log_sklearn(model)

    outputs = client.get_run(run.info.run_id).outputs
    assert outputs is not None
    assert [(o.model_id, o.step) for o in outputs.model_outputs] == [(info.model_id, 0)]


def test_bad_logged_model_requests_get_mlflow_errors_and_change_nothing(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("errors"))
    model = client.create_logged_model(experiment_id, name="kept", params={"alpha": "0.5"})

    cases: list[tuple[Any, str]] = [
        (lambda: client.get_logged_model("m-missing"), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: client.create_logged_model("987654", name="x"), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: client.create_logged_model(experiment_id, name="a/b"), "INVALID_PARAMETER_VALUE"),
        (
            lambda: client.create_logged_model(experiment_id, name="x", source_run_id="nope"),
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            lambda: client.log_model_params(model.model_id, {"alpha": "0.9"}),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            lambda: client.delete_logged_model_tag(model.model_id, "absent"),
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            lambda: client.search_logged_models([experiment_id], filter_string="name = "),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            lambda: client.search_logged_models([experiment_id], filter_string="nope.x = 'a'"),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            lambda: client.search_logged_models(
                [experiment_id], order_by=[{"field_name": "params.alpha"}]
            ),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            lambda: client.search_logged_models([experiment_id], page_token="garbage"),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            lambda: client.finalize_logged_model("m-missing", LoggedModelStatus.READY),
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ]
    for call, expected in cases:
        with pytest.raises(MlflowException) as error:
            call()
        assert error_code(error) == expected

    bad_status = httpx.patch(
        f"{tracking_url}{MODELS}/{model.model_id}", json={"status": "SHINY"}, headers=auth_headers()
    )
    assert bad_status.status_code == 400
    assert bad_status.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    unknown_run = httpx.post(
        f"{tracking_url}/api/2.0/mlflow/runs/outputs",
        json={"run_id": "nope", "models": [{"model_id": model.model_id, "step": 0}]},
        headers=auth_headers(),
    )
    assert unknown_run.status_code == 404
    assert unknown_run.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    kept = client.get_logged_model(model.model_id)
    assert kept.params == {"alpha": "0.5"}
    assert kept.status == LoggedModelStatus.PENDING
    assert [m.name for m in client.search_logged_models([experiment_id])] == ["kept"]


async def test_metric_filters_and_ordering_use_the_models_metrics_per_dataset(
    database_url: str,
) -> None:
    await upgrade_async(database_url, MIGRATIONS)
    database = Database(database_url)
    try:
        run_id = uuid.uuid4().hex
        async with database.session() as session:
            experiment_id = str(
                await session.scalar(
                    insert(tables.experiments)
                    .values(
                        name=unique("metrics"),
                        artifact_location="mlflow-artifacts:/x",
                        creation_time=1,
                        last_update_time=1,
                    )
                    .returning(tables.experiments.c.experiment_id)
                )
            )
            await session.execute(
                insert(tables.runs).values(
                    run_uuid=run_id,
                    experiment_id=int(experiment_id),
                    status="RUNNING",
                    start_time=1,
                    artifact_uri="mlflow-artifacts:/x/run/artifacts",
                )
            )
        rows = SqlLoggedModelStore()
        store = LoggedModels(database=database, store=rows, runs=SqlTrackingStore())
        ids = {
            name: (await store.create(experiment_id=experiment_id, name=name)).info.model_id
            for name in ("early", "late", "other", "none")
        }
        metrics = [
            # "early" improved: 0.5 then 0.95, both on the eval set.
            LoggedModelMetric(
                key="f1",
                value=0.5,
                timestamp=10,
                step=0,
                model_id=ids["early"],
                dataset_name="eval",
                dataset_digest="d1",
            ),
            LoggedModelMetric(
                key="f1",
                value=0.95,
                timestamp=20,
                step=1,
                model_id=ids["early"],
                dataset_name="eval",
                dataset_digest="d1",
            ),
            LoggedModelMetric(
                key="f1",
                value=0.8,
                timestamp=10,
                step=0,
                model_id=ids["late"],
                dataset_name="eval",
                dataset_digest="d1",
            ),
            LoggedModelMetric(
                key="f1",
                value=0.99,
                timestamp=10,
                step=0,
                model_id=ids["other"],
                dataset_name="train",
                dataset_digest="d2",
            ),
        ]
        async with database.session() as session:
            await rows.upsert_metrics(session, run_id, metrics)
            await rows.upsert_metrics(session, run_id, metrics[:1])  # idempotent

        async def names(**kwargs: Any) -> list[str]:
            page, _ = await store.search(experiment_ids=[experiment_id], **kwargs)
            return [m.info.name for m in page]

        best_first = [ModelOrderBy(field_name="metrics.f1", ascending=False)]
        on_eval = [DatasetFilter(dataset_name="eval")]
        assert await names(order_by=best_first) == ["other", "early", "late", "none"]
        assert await names(filter_="metrics.f1 > 0.9", order_by=best_first) == ["other", "early"]
        assert await names(filter_="metrics.f1 > 0.9", datasets=on_eval) == ["early"]
        assert await names(datasets=on_eval, order_by=best_first) == ["early", "late"]
        assert await names(filter_="metrics.f1 < 0.6") == ["early"], "any value matches"
        early = await store.get(ids["early"])
        assert [(m.value, m.step, m.run_id) for m in early.data.metrics] == [
            (0.5, 0, run_id),
            (0.95, 1, run_id),
        ]
    finally:
        await database.dispose()
