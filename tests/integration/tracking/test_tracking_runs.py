"""Experiments, runs and logging through the official mlflow client."""

from __future__ import annotations

import math

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

pytestmark = pytest.mark.integration


def test_experiments_are_created_found_renamed_tagged_deleted_and_restored(
    tracking_url: str,
) -> None:
    client = MlflowClient(tracking_url)
    name = unique("exp")
    experiment_id = client.create_experiment(name, tags={"team": "fraud"})

    experiment = client.get_experiment(experiment_id)
    assert experiment.name == name
    assert experiment.tags == {"team": "fraud"}
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    by_name = client.get_experiment_by_name(name)
    assert by_name is not None
    assert by_name.experiment_id == experiment_id

    renamed = unique("renamed")
    client.rename_experiment(experiment_id, renamed)
    client.set_experiment_tag(experiment_id, "stage", "dev")
    experiment = client.get_experiment(experiment_id)
    assert (experiment.name, experiment.tags["stage"]) == (renamed, "dev")
    assert client.get_experiment_by_name(name) is None

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_the_default_experiment_exists_for_runs_without_one(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    assert client.get_experiment("0").name == "Default"
    run = client.create_run("0")
    assert run.info.experiment_id == "0"


def test_a_run_logs_params_metrics_with_steps_tags_and_a_batch(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    client = MlflowClient(tracking_url)
    mlflow.set_experiment(unique("runs"))
    with mlflow.start_run(run_name="baseline") as active:
        mlflow.log_params({"alpha": 0.5, "solver": "lbfgs"})
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("diverged", math.nan)
        mlflow.set_tags({"team": "fraud", "git_sha": "abc123"})
        client.log_batch(
            active.info.run_id,
            metrics=[Metric(f"m{i}", float(i), 1_700_000_000_000, 0) for i in range(1000)],
            params=[Param(f"p{i}", str(i)) for i in range(50)],
            tags=[RunTag(f"t{i}", str(i)) for i in range(20)],
        )
    run = client.get_run(active.info.run_id)

    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None
    assert run.info.run_name == "baseline"
    assert run.data.params["alpha"] == "0.5"
    assert run.data.params["p49"] == "49"
    assert run.data.metrics["loss"] == 0.25, "the latest step wins"
    assert run.data.metrics["m999"] == 999.0
    assert math.isnan(run.data.metrics["diverged"])
    assert run.data.tags["team"] == "fraud"
    assert run.data.tags["t19"] == "19"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]


def test_the_latest_metric_is_the_highest_step_then_time_then_value(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    run_id = client.create_run(client.create_experiment(unique("latest"))).info.run_id

    def latest() -> float:
        return client.get_run(run_id).data.metrics["loss"]

    client.log_metric(run_id, "loss", 1.0, timestamp=1000, step=5)
    client.log_metric(run_id, "loss", 9.0, timestamp=2000, step=2)
    assert latest() == 1.0, "an older step does not replace a newer one"
    client.log_metric(run_id, "loss", 3.0, timestamp=1500, step=5)
    assert latest() == 3.0, "the same step, later"
    client.log_metric(run_id, "loss", 2.0, timestamp=1500, step=5)
    assert latest() == 3.0, "the same step and time: the larger value"
    client.log_metric(run_id, "loss", math.nan, timestamp=1500, step=5)
    assert latest() == 3.0, "NaN compares as no larger"
    client.log_batch(run_id, metrics=[Metric("loss", 7.0, 1, 6), Metric("loss", 8.0, 0, 6)])
    assert latest() == 7.0, "in a batch too"
    assert len(client.get_metric_history(run_id, "loss")) == 7


def test_a_param_logged_again_with_another_value_is_refused_and_kept(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    run = client.create_run(client.create_experiment(unique("params")))
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_param(run.info.run_id, "alpha", "0.5")  # the same value again is fine

    with pytest.raises(MlflowException) as refused:
        client.log_param(run.info.run_id, "alpha", "0.7")

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.params["alpha"] == "0.5"


def test_a_batch_over_the_limits_is_refused_and_stores_nothing(tracking_url: str) -> None:
    # The client splits big batches itself, so the limits are checked with raw requests.
    client = MlflowClient(tracking_url)
    run_id = client.create_run(client.create_experiment(unique("limits"))).info.run_id
    url = f"{tracking_url}/api/2.0/mlflow/runs/log-batch"
    metric = {"key": "m", "value": 1.0, "timestamp": 0, "step": 0}

    too_many_metrics = httpx.post(
        url, json={"run_id": run_id, "metrics": [metric] * 1001}, headers=auth_headers()
    )
    too_many_params = httpx.post(
        url,
        json={
            "run_id": run_id,
            "metrics": [metric],
            "params": [{"key": f"p{i}", "value": "v"} for i in range(101)],
        },
        headers=auth_headers(),
    )

    for response in (too_many_metrics, too_many_params):
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "at most 1000 metrics" in too_many_metrics.json()["message"]
    assert "at most 100 params" in too_many_params.json()["message"]
    assert client.get_run(run_id).data.metrics == {}
    assert client.get_metric_history(run_id, "m") == []


def test_unknown_runs_and_experiments_and_duplicate_names_get_mlflow_error_codes(
    tracking_url: str,
) -> None:
    client = MlflowClient(tracking_url)
    name = unique("dupe")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as duplicate:
        client.create_experiment(name)
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing_run:
        client.get_run("0" * 32)
    assert missing_run.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as missing_experiment:
        client.get_experiment("987654")
    assert missing_experiment.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad_key:
        client.log_metric(client.create_run("0").info.run_id, "../escape", 1.0)
    assert bad_key.value.error_code == "INVALID_PARAMETER_VALUE"


def test_runs_are_deleted_restored_and_tags_removed(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    run = client.create_run(client.create_experiment(unique("lifecycle")), tags={"keep": "no"})
    client.delete_tag(run.info.run_id, "keep")
    assert "keep" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException) as missing:
        client.delete_tag(run.info.run_id, "keep")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run.info.run_id, "late", 1.0)
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as unknown:
        client.log_metric("0" * 32, "late", 1.0)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.restore_run(run.info.run_id)
    restored = client.get_run(run.info.run_id)
    assert restored.info.lifecycle_stage == "active"
    assert "late" not in restored.data.metrics
    assert client.get_metric_history(run.info.run_id, "late") == []


def test_dataset_inputs_are_logged_with_digest_source_and_schema(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_experiment(unique("inputs"))
    features = np.arange(40, dtype=np.float64).reshape(10, 4)
    dataset = from_numpy(features, source="s3://bucket/train.npy", name="train")
    with mlflow.start_run() as active:
        mlflow.log_input(dataset, context="training")

    inputs = MlflowClient(tracking_url).get_run(active.info.run_id).inputs
    assert inputs is not None
    (logged,) = inputs.dataset_inputs
    assert logged.dataset.name == "train"
    assert logged.dataset.digest == dataset.digest
    assert "s3://bucket/train.npy" in logged.dataset.source
    assert logged.dataset.schema
    assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "training"
