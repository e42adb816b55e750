"""Jobs of the reference pipeline against real tracking and registry: the gate and promotion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from driftloop_events.errors import EnvelopeError
from driftloop_kit.declarations import EvaluationPolicy, TriggerPolicy
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from tests.fakes.common import unique

from ..bus.helpers import read_topic
from ..stack import Stack, reset_mlflow_uris, running_stack
from .conftest import eventually, running_trainer, wait_for_job

pytestmark = pytest.mark.integration

OPEN = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    with running_stack(home=home, bootstrap_servers=broker.bootstrap_servers) as running:
        yield running


def reference_job(**evaluation: Any) -> ModelConfig:
    return ModelConfig(
        policy=OPEN,
        job=JobSpec(
            label="species",
            labels_source="builtin:iris",
            feature_views=["iris_features"],
            evaluation=EvaluationPolicy(**evaluation),
        ),
    )


async def events_of(bootstrap: str, topic: str, key: str) -> list[Any]:
    records = await read_topic(bootstrap, topic, expected=100_000, timeout=1)
    found = []
    for record in records:
        try:
            found.append(from_record(record.value, record.headers))
        except EnvelopeError:  # another module's poison record on the shared broker
            continue
    return [e for e in found if e.key == key]


async def train(client: httpx.AsyncClient, model: str, **parameters: str) -> dict[str, Any]:
    response = await client.post(
        f"/models/{model}/train", json={"parameters": parameters, "reason": "test"}
    )
    assert response.status_code == 202, response.text
    return await wait_for_job(client, response.json()["job_id"], timeout=90)


def champion(stack: Stack, model: str, alias: str = "champion") -> int:
    client = MlflowClient(tracking_uri=stack.tracking_url, registry_uri=stack.registry_url)
    return int(client.get_model_version_by_alias(model, alias).version)


def register_stump(stack: Stack, model: str) -> None:
    """v1, made outside the trainer: a one-split tree as the champion to beat."""
    features, labels = load_iris(return_X_y=True, as_frame=True)
    features.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    names = np.asarray(load_iris().target_names)[labels]
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                DecisionTreeClassifier(max_depth=1).fit(features, names),
                name="model",
                registered_model_name=model,
                pip_requirements=["scikit-learn"],
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        MlflowClient().set_registered_model_alias(model, "champion", "1")
    finally:
        reset_mlflow_uris()


async def test_a_worse_challenger_is_not_promoted_and_a_better_one_is_with_alias_set_following(
    stack: Stack, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    model = unique("iris-gate")
    register_stump(stack, model)
    async with running_trainer(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trainer.db'}",
        bootstrap_servers=broker.bootstrap_servers,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        models={model: reference_job(min_improvement=0.01)},
    ) as client:
        # v2: always the most frequent class: worse, recorded with both scores.
        worse = await train(client, model, estimator="dummy")
        assert worse["status"] == "succeeded", worse["error"]
        assert (worse["model_version"], worse["promoted"]) == (2, False)
        scored = worse["evaluation"]
        assert scored["passed"] is False
        assert scored["champion_version"] == 1
        assert scored["challenger_score"] < scored["champion_score"]
        assert champion(stack, model) == 1

        # v3: logistic regression beats the stump and is promoted; v1 becomes previous.
        better = await train(client, model, estimator="logistic_regression")
        assert better["status"] == "succeeded", better["error"]
        assert (better["model_version"], better["promoted"]) == (3, True)
        assert better["evaluation"]["challenger_score"] > better["evaluation"]["champion_score"]
        assert champion(stack, model) == 3
        assert champion(stack, model, "previous") == 1

        async def promotion() -> list[Any] | None:
            found = await events_of(broker.bootstrap_servers, "registry.models", model)
            moves = [e for e in found if e.type == "driftloop.registry.alias.set"]
            return moves if any(e.data.version == 3 for e in moves) else None

        moves = await eventually(promotion, timeout=30)
        to_three = next(e.data for e in moves if e.data.version == 3)
        assert (to_three.alias, to_three.previous_version) == ("champion", 1)
        completed = [
            e
            for e in await events_of(broker.bootstrap_servers, "trainer.jobs", model)
            if e.type == "driftloop.trainer.training.completed"
        ]
        by_job = {e.data.job_id: e for e in completed}
        assert to_three.cause.id == by_job[better["id"]].id
        assert to_three.cause.type == "driftloop.trainer.training.completed"
        assert by_job[worse["id"]].data.promoted is False
        assert by_job[worse["id"]].data.evaluation.champion_version == 1
        assert [e.data.version for e in moves if e.data.alias == "champion"] == [1, 3]

        # The run carries the lineage the registry and the monitor read.
        run = MlflowClient(tracking_uri=stack.tracking_url).get_run(better["run_id"])
        tags = run.data.tags
        assert tags["driftloop.training_job_id"] == better["id"]
        assert tags["driftloop.feature_views"] == "iris_features"
        assert tags["driftloop.reference_data"].endswith("reference/reference.csv")
        assert tags["driftloop.code_version"].startswith("driftloop-trainer==")
        assert run.data.metrics["accuracy"] == better["evaluation"]["challenger_score"]
        assert run.inputs is not None
        assert run.inputs.dataset_inputs[0].dataset.digest
        artifacts = [
            a.path
            for a in MlflowClient(stack.tracking_url).list_artifacts(run.info.run_id, "reference")
        ]
        assert artifacts == ["reference/reference.csv"]

        # Rollback: champion back to v1, previous now v3.
        rolled = await client.post(f"/models/{model}/rollback")
        assert rolled.status_code == 200, rolled.text
        assert rolled.json() == {"model_name": model, "champion": 1, "previous": 3}
        assert champion(stack, model) == 1
        assert champion(stack, model, "previous") == 3
        history = (await client.get(f"/models/{model}/alias-moves")).json()["alias_moves"]
        assert [(m["action"], m["alias"], m["version"]) for m in history][:2] == [
            ("rollback", "previous", 3),
            ("rollback", "champion", 1),
        ]
        latest = await client.get(f"/models/{model}/alias-moves", params={"limit": 1})
        assert [(m["action"], m["alias"]) for m in latest.json()["alias_moves"]] == [
            ("rollback", "previous")
        ]


async def test_a_failing_job_publishes_training_failed_and_moves_no_alias(
    stack: Stack, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    model = unique("iris-failing")
    async with running_trainer(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trainer.db'}",
        bootstrap_servers=broker.bootstrap_servers,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        # The gate asks for a metric the pipeline does not compute: the job fails after
        # registering its version, the last moment an alias could still move.
        models={model: reference_job(metric="roc_auc")},
    ) as client:
        failed = await train(client, model)
        assert (failed["status"], failed["stage"]) == ("failed", "evaluation")
        assert "roc_auc" in failed["error"]
        assert failed["model_version"] == 1
        assert failed["promoted"] is False

        async def failure() -> list[Any] | None:
            found = await events_of(broker.bootstrap_servers, "trainer.jobs", model)
            return found if found and found[-1].type.endswith(".failed") else None

        published = await eventually(failure, timeout=30)
        event = published[-1]
        assert event.data.job_id == failed["id"]
        assert event.data.error_type == "EvaluationError"
        types = [e.type for e in published]
        assert types == [
            "driftloop.trainer.training.requested",
            "driftloop.trainer.training.started",
            "driftloop.trainer.training.failed",
        ]
        registry_events = await events_of(broker.bootstrap_servers, "registry.models", model)
        assert [e.type for e in registry_events] == ["driftloop.registry.model_version.created"]
        with pytest.raises(mlflow.exceptions.MlflowException):
            champion(stack, model)
