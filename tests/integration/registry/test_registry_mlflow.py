"""The registry through the official mlflow client: register, alias, load, search, lineage."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

from ..stack import Stack

pytestmark = pytest.mark.integration

VERSIONS = "/api/2.0/mlflow/model-versions"
MODELS = "/api/2.0/mlflow/registered-models"


def error_code(error: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(error.value.error_code)


def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    features, labels = load_iris(return_X_y=True)
    return features, labels


def log_and_register(name: str, model: LogisticRegression, **run_tags: str) -> Any:
    """``mlflow.sklearn.log_model(..., registered_model_name=name)`` in a new run.

    MLflow 3's default serialization (skops); requirements given so that the client
    does not spend seconds inferring them.
    """
    with mlflow.start_run() as run:
        mlflow.set_tags(run_tags)
        mlflow.log_param("max_iter", model.max_iter)
        mlflow.log_metric("accuracy", 0.97)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            pip_requirements=["scikit-learn", "skops"],
        )
    return run, info


def test_a_registered_sklearn_model_loads_by_its_champion_alias_and_follows_the_alias(
    mlflow_at: Stack,
) -> None:
    name = unique("iris")
    features, labels = iris()
    first = LogisticRegression(max_iter=300).fit(features, labels)
    second = LogisticRegression(max_iter=300, C=0.01).fit(features, labels)
    log_and_register(name, first)
    log_and_register(name, second)
    client = MlflowClient()

    client.set_registered_model_alias(name, "champion", "1")
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(loaded.predict(pd.DataFrame(features)), first.predict(features))

    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    moved = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(moved.predict(pd.DataFrame(features)), second.predict(features))
    assert not np.array_equal(first.predict_proba(features), second.predict_proba(features))

    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "2"}
    assert client.get_model_version(name, "2").aliases == ["champion"]
    assert client.get_model_version(name, "1").aliases == []


def test_versions_are_searched_by_name_tag_and_run_and_models_by_name_and_tag(
    mlflow_at: Stack,
) -> None:
    client = MlflowClient()
    name, other = unique("search"), unique("search")
    features, labels = iris()
    model = LogisticRegression(max_iter=200).fit(features, labels)
    run, _ = log_and_register(name, model)
    log_and_register(name, model)
    log_and_register(other, model)
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.set_registered_model_tag(other, "team", "fraud")

    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["2", "1"]
    tagged = client.search_model_versions(f"name = '{name}' AND tags.validated = 'yes'")
    assert [(v.name, v.version) for v in tagged] == [(name, "2")]
    by_run = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert [(v.name, v.version) for v in by_run] == [(name, "1")]
    # Beyond MLflow: OR across models.
    either = client.search_model_versions(f"name = '{name}' OR name = '{other}'")
    assert sorted((v.name, v.version) for v in either) == sorted(
        [(name, "1"), (name, "2"), (other, "1")]
    )

    assert [m.name for m in client.search_registered_models(f"name = '{other}'")] == [other]
    assert [m.name for m in client.search_registered_models("tags.team = 'fraud'")] == [other]
    prefix = name.split("-")[0]
    found = client.search_registered_models(f"name LIKE '{prefix}-%'", max_results=1)
    assert len(found) == 1
    assert found.token  # a second page exists


def test_a_version_records_its_run_lineage_and_the_sha256_of_every_model_file(
    mlflow_at: Stack,
) -> None:
    name = unique("lineage")
    features, labels = iris()
    model = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run() as run:
        mlflow.log_input(
            mlflow.data.from_pandas(pd.DataFrame(features), name="iris-train"),  # type: ignore[attr-defined]
            context="training",
        )
    inputs = MlflowClient().get_run(run.info.run_id).inputs
    assert inputs is not None
    digest = inputs.dataset_inputs[0].dataset.digest
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.set_tags(
            {
                "driftloop.feature_views": "iris_features, iris_stats",
                "driftloop.trigger.event_id": "evt-123",
                "driftloop.trigger.event_type": "driftloop.monitor.drift.detected",
                "driftloop.training_job_id": "job-7",
            }
        )
        mlflow.log_params({"C": "1.0"})
        mlflow.log_metric("f1", 0.93)
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
        )

    body = httpx.get(
        f"{mlflow_at.registry_url}{VERSIONS}/get",
        params={"name": name, "version": "1"},
        headers=auth_headers(),
    ).json()["model_version"]
    lineage = body["lineage"]
    assert lineage["run_id"] == run.info.run_id
    assert lineage["params"] == {"C": "1.0"}
    assert lineage["metrics"]["f1"] == pytest.approx(0.93)
    assert [(d["name"], d["digest"], d["context"]) for d in lineage["datasets"]] == [
        ("iris-train", digest, "training")
    ]
    assert lineage["feature_views"] == ["iris_features", "iris_stats"]
    assert lineage["triggering_event"]["id"] == "evt-123"
    assert lineage["training_job_id"] == "job-7"

    # Every file of the logged model, hashed as tracking stores it.
    logged = mlflow.get_logged_model(body["model_id"]) if body.get("model_id") else None
    source_dir = Path(
        mlflow.artifacts.download_artifacts(logged.artifact_location if logged else body["source"])
    )
    expected = {
        str(path.relative_to(source_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in source_dir.rglob("*")
        if path.is_file()
    }
    assert {f["path"]: f["sha256"] for f in body["files"]} == expected
    assert "MLmodel" in expected


def test_a_model_file_changed_after_registration_is_refused_on_download(
    mlflow_at: Stack, tmp_path: Path
) -> None:
    name = unique("tamper")
    features, labels = iris()
    log_and_register(name, LogisticRegression(max_iter=200).fit(features, labels))
    client = MlflowClient()
    uri = client.get_model_version_download_uri(name, "1")
    storage_key = uri.rsplit("/", 1)[1]
    # The download works while the files are intact.
    assert (Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1")) / "MLmodel").exists()

    store = ArtifactRepository(mlflow_at.registry.artifact_root)
    target = Path(store.location(f"{storage_key}/MLmodel"))
    target.write_text(target.read_text() + "\n# changed\n")

    response = httpx.get(
        f"{mlflow_at.registry_url}/api/2.0/mlflow-artifacts/artifacts/{storage_key}/MLmodel",
        headers=auth_headers(),
    )
    assert response.status_code == 409
    assert "Integrity check failed for model file 'MLmodel'" in response.json()["message"]
    with pytest.raises(MlflowException, match="Integrity check failed"):
        mlflow.pyfunc.load_model(f"models:/{name}/1", dst_path=str(tmp_path))


def test_bad_requests_get_mlflow_errors_and_change_nothing(mlflow_at: Stack) -> None:
    client = MlflowClient()
    name = unique("bad")
    features, labels = iris()
    log_and_register(name, LogisticRegression(max_iter=200).fit(features, labels))
    client.set_registered_model_alias(name, "champion", "1")

    with pytest.raises(MlflowException) as unknown:
        client.get_registered_model(unique("missing"))
    assert error_code(unknown) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as duplicate:
        client.create_registered_model(name)
    assert error_code(duplicate) == "RESOURCE_ALREADY_EXISTS"
    for alias in ("bad alias", "latest", "v3", ""):
        with pytest.raises(MlflowException) as bad_alias:
            client.set_registered_model_alias(name, alias, "1")
        assert error_code(bad_alias) == "INVALID_PARAMETER_VALUE", alias
    with pytest.raises(MlflowException) as no_version:
        client.set_registered_model_alias(name, "champion", "7")
    assert error_code(no_version) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad_source:
        client.create_model_version(name, f"runs:/{uuid.uuid4().hex}/model")
    assert error_code(bad_source) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as local_source:
        client.create_model_version(name, "/etc")
    assert error_code(local_source) == "INVALID_PARAMETER_VALUE"

    raw = httpx.get(
        f"{mlflow_at.registry_url}{VERSIONS}/get",
        params={"name": name, "version": "x"},
        headers=auth_headers(),
    )
    assert raw.status_code == 400
    assert raw.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    traversal = httpx.get(
        f"{mlflow_at.registry_url}/api/2.0/mlflow-artifacts/artifacts/%2e%2e/%2e%2e/etc/passwd",
        headers=auth_headers(),
    )
    assert 400 <= traversal.status_code < 500

    # Nothing changed: one version, the alias where it was, no new files.
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    keys = {p.name for p in Path(mlflow_at.registry.artifact_root).iterdir()}
    assert len(keys) == len(client.search_model_versions("name LIKE '%'"))


@pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning")
def test_rename_describe_tag_stage_and_delete_work_as_in_mlflow(mlflow_at: Stack) -> None:
    client = MlflowClient()
    name, renamed = unique("life"), unique("renamed")
    features, labels = iris()
    model = LogisticRegression(max_iter=200).fit(features, labels)
    log_and_register(name, model)
    log_and_register(name, model)

    client.update_registered_model(name, description="iris classifier")
    client.rename_registered_model(name, renamed)
    with pytest.raises(MlflowException):
        client.get_registered_model(name)
    assert client.get_registered_model(renamed).description == "iris classifier"
    client.update_model_version(renamed, "1", description="first")
    assert client.get_model_version(renamed, "1").description == "first"

    client.transition_model_version_stage(renamed, "1", "Production")
    client.transition_model_version_stage(
        renamed, "2", "production", archive_existing_versions=True
    )
    assert client.get_model_version(renamed, "1").current_stage == "Archived"
    latest = client.get_latest_versions(renamed, stages=["Production"])
    assert [v.version for v in latest] == ["2"]

    client.set_model_version_tag(renamed, "2", "k", "v")
    client.delete_model_version_tag(renamed, "2", "k")
    assert client.get_model_version(renamed, "2").tags == {}
    client.set_registered_model_alias(renamed, "champion", "2")
    client.delete_model_version(renamed, "2")
    assert client.get_registered_model(renamed).aliases == {}
    log_and_register(renamed, model)  # numbers are never reused
    assert [v.version for v in client.search_model_versions(f"name = '{renamed}'")] == ["3", "1"]
    client.delete_registered_model(renamed)
    assert client.search_model_versions(f"name = '{renamed}'") == []


def test_download_uris_name_the_registry_as_each_client_reached_it(mlflow_at: Stack) -> None:
    name = unique("forwarded")
    features, labels = iris()
    log_and_register(name, LogisticRegression(max_iter=200).fit(features, labels))
    url = f"{mlflow_at.registry_url}{VERSIONS}/get-download-uri"
    params = {"name": name, "version": "1"}

    def uri(**headers: str) -> httpx.Response:
        return httpx.get(url, params=params, headers={**auth_headers(), **headers})

    direct = uri().json()["artifact_uri"]
    key = direct.rsplit("/", 1)[1]
    # No public_url: the host and port the client called (127.0.0.1 here; in compose
    # registry:5001 for serving, 127.0.0.1:5001 for the host).
    assert direct == f"mlflow-artifacts://{mlflow_at.registry_url.split('://')[1]}/{key}"
    assert (
        uri(Host="registry:5001").json()["artifact_uri"]
        == f"mlflow-artifacts://registry:5001/{key}"
    )
    # Behind a proxy: its host, scheme and prefix, as the artifact proxy's own URL.
    behind = uri(
        **{
            "X-Forwarded-Host": "models.example.com, proxy.internal",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Prefix": "/ml/",
        }
    ).json()["artifact_uri"]
    assert behind == f"https://models.example.com/ml/api/2.0/mlflow-artifacts/artifacts/{key}"
    assert uri(**{"X-Forwarded-Host": "models.example.com:8443"}).json()["artifact_uri"] == (
        f"mlflow-artifacts://models.example.com:8443/{key}"
    )
    # A forwarded value that is not what it names is refused, not echoed into the URI.
    for header, value in (
        ("X-Forwarded-Host", "evil.example/x?"),
        ("X-Forwarded-Proto", "javascript"),
        ("X-Forwarded-Prefix", "/a/../b"),
        ("X-Forwarded-Prefix", "//evil.example"),
    ):
        refused = uri(**{header: value})
        assert refused.status_code == 400, (header, value, refused.text)
        assert header in refused.json()["message"]
    # The mlflow client follows the prefixed form too (its HTTP artifact repository).
    assert (Path(mlflow.artifacts.download_artifacts(direct)) / "MLmodel").exists()
