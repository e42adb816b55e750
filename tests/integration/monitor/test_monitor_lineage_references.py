"""Reference data from the lineage: the sample a training run logged, loaded on alias.set.

Tracking and registry are the real services; runs and versions are made with the official
mlflow client, and every alias move is the registry's own ``alias.set`` event.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.topics import dlq_topic
from driftloop_monitor.adapters.references import REFERENCE_DATA_TAG

from ...unit.monitor.data import frame
from ..bus.helpers import eventually
from ..stack import Stack, reset_mlflow_uris, running_stack
from .conftest import RunningMonitor, monitor_running, monitor_settings, read_all

pytestmark = pytest.mark.integration

WINDOW = 200
SHIFTED = ["x0", "x1", "x2", "x3", "colour"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    """Tracking and registry (SQLite) for the module, on the session broker."""
    home = tmp_path_factory.mktemp("stack")
    with running_stack(home=home, bootstrap_servers=broker.bootstrap_servers) as running:
        yield running


@pytest.fixture
async def lineage_monitor(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker, stack: Stack
) -> AsyncIterator[RunningMonitor]:
    """The monitor with its default reference source, pointed at the stack."""
    settings = monitor_settings(
        database_url=database_url,
        tmp_path=tmp_path,
        broker=broker,
        registry_url=stack.registry_url,
        tracking_url=stack.tracking_url,
    )
    assert settings.reference_source == "lineage"
    async with monitor_running(settings) as running:
        yield running


def _train_and_register(
    stack: Stack, *, name: str, sample: pd.DataFrame, tagged: bool, folder: Path
) -> tuple[int, str]:
    """What a training job does: log the sample (and tag it), log and register the model.

    Returns:
        The new version and the tag's value ("" when untagged).
    """
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        mlflow.set_experiment(name)
        features, labels = load_iris(return_X_y=True)
        with mlflow.start_run() as run:
            folder.mkdir(parents=True, exist_ok=True)
            sample.to_csv(folder / "reference.csv", index=False)
            mlflow.log_artifact(str(folder / "reference.csv"), artifact_path="reference")
            location = ""
            if tagged:
                location = f"{run.info.artifact_uri.rstrip('/')}/reference/reference.csv"
                mlflow.set_tag(REFERENCE_DATA_TAG, location)
            info = mlflow.sklearn.log_model(
                LogisticRegression(max_iter=200).fit(features, labels),
                name="model",
                registered_model_name=name,
                pip_requirements=["scikit-learn"],
            )
        assert info.registered_model_version is not None
        return int(info.registered_model_version), location
    finally:
        reset_mlflow_uris()


async def train(
    stack: Stack, tmp_path: Path, name: str, sample: pd.DataFrame, *, tagged: bool = True
) -> tuple[int, str]:
    # In a thread: the mlflow client blocks, and the monitor runs in this event loop.
    folder = tmp_path / "runs" / uuid.uuid4().hex
    return await asyncio.to_thread(
        _train_and_register, stack, name=name, sample=sample, tagged=tagged, folder=folder
    )


async def make_champion(stack: Stack, name: str, version: int) -> None:
    """Move the alias through the registry: its alias.set event reaches the monitor."""
    client = MlflowClient(tracking_uri=stack.tracking_url, registry_uri=stack.registry_url)
    await asyncio.to_thread(client.set_registered_model_alias, name, "champion", str(version))


async def reference(service: RunningMonitor, name: str, version: int) -> dict[str, Any] | None:
    response = await service.client.get(f"/models/{name}/versions/{version}/reference")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def reference_rows(service: RunningMonitor, name: str, version: int) -> pd.DataFrame:
    response = await service.client.get(
        f"/models/{name}/versions/{version}/reference", params={"format": "csv"}
    )
    assert response.status_code == 200, response.text
    return pd.read_csv(io.BytesIO(response.content))


async def loaded(service: RunningMonitor, name: str, version: int) -> dict[str, Any]:
    found: dict[str, Any] = await eventually(
        lambda: reference(service, name, version), timeout=60, interval=0.2
    )
    return found


def _rows(data: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (float(v) if isinstance(v, float) else v) for k, v in r.items()}
        for r in data.to_dict("records")
    ]


async def test_each_new_champion_gets_the_sample_its_training_run_logged(
    lineage_monitor: RunningMonitor, stack: Stack, tmp_path: Path
) -> None:
    service = lineage_monitor
    name = f"lineage-{uuid.uuid4().hex[:8]}"
    policy = {"window_rows": WINDOW, "window_seconds": 3600}
    assert (await service.client.put(f"/policies/{name}", json=policy)).status_code == 200
    first_sample = frame(400, seed=1)
    second_sample = frame(600, seed=2, shifted=SHIFTED)  # the world moved before retraining
    first, first_location = await train(stack, tmp_path, name, first_sample)
    second, second_location = await train(stack, tmp_path, name, second_sample)
    assert (first, second) == (1, 2)
    # Tracking proxies artifacts: the tag is an mlflow-artifacts: URI, read through it.
    assert first_location.startswith("mlflow-artifacts:/")

    await make_champion(stack, name, first)
    found = await loaded(service, name, first)
    assert found["rows"] == 400
    assert found["source"] == first_location
    assert found["column_types"]["colour"] == "cat"
    pd.testing.assert_frame_equal(await reference_rows(service, name, first), first_sample)
    assert await reference(service, name, second) is None  # not champion yet

    # Retrained and promoted: the monitor switches to the new version's own sample.
    await make_champion(stack, name, second)
    switched = await loaded(service, name, second)
    assert switched["rows"] == 600
    assert switched["source"] == second_location
    assert switched["digest"] != found["digest"]
    pd.testing.assert_frame_equal(await reference_rows(service, name, second), second_sample)

    # Traffic of the new champion, like its training data, is tested against that data:
    # no drift (against the first version's sample it would drift).
    await service.predict(name, second, _rows(frame(WINDOW, seed=30, shifted=SHIFTED)))

    async def decided() -> list[dict[str, Any]] | None:
        response = await service.client.get(f"/models/{name}/versions/{second}/drift")
        history: list[dict[str, Any]] = response.json()
        return history or None

    [window] = await eventually(decided, timeout=60)
    assert window["status"] == "tested"
    assert window["dataset_drift"] is False
    assert window["reference_digest"] == switched["digest"]


async def test_an_upload_replaces_the_lineage_sample_and_later_moves_keep_it(
    lineage_monitor: RunningMonitor, stack: Stack, tmp_path: Path
) -> None:
    service = lineage_monitor
    name = f"upload-{uuid.uuid4().hex[:8]}"
    first, _ = await train(stack, tmp_path, name, frame(300, seed=3))
    second, _ = await train(stack, tmp_path, name, frame(300, seed=4))
    await make_champion(stack, name, first)
    assert (await loaded(service, name, first))["rows"] == 300

    uploaded = frame(250, seed=5)
    response = await service.client.put(
        f"/models/{name}/versions/{first}/reference",
        content=uploaded.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "upload"

    # The alias leaves and comes back: that move must not overwrite the upload. The move
    # to a third version after it is the sync point (a model's events keep their order).
    await make_champion(stack, name, second)
    await make_champion(stack, name, first)
    third, _ = await train(stack, tmp_path, name, frame(300, seed=6))
    await make_champion(stack, name, third)
    await loaded(service, name, third)

    kept = await reference(service, name, first)
    assert kept is not None
    assert (kept["source"], kept["rows"]) == ("upload", 250)
    pd.testing.assert_frame_equal(await reference_rows(service, name, first), uploaded)


async def test_a_champion_whose_run_logged_no_reference_is_reported_without_one(
    lineage_monitor: RunningMonitor, stack: Stack, tmp_path: Path
) -> None:
    service = lineage_monitor
    name = f"untagged-{uuid.uuid4().hex[:8]}"
    policy = {"window_rows": WINDOW, "window_seconds": 3600}
    assert (await service.client.put(f"/policies/{name}", json=policy)).status_code == 200
    untagged, location = await train(stack, tmp_path, name, frame(300, seed=7), tagged=False)
    assert location == ""
    tagged, _ = await train(stack, tmp_path, name, frame(300, seed=8))

    await make_champion(stack, name, untagged)
    await make_champion(stack, name, tagged)  # handled after the first move: the sync point
    await loaded(service, name, tagged)
    assert await reference(service, name, untagged) is None

    # Its traffic is counted, not tested.
    await service.predict(name, untagged, _rows(frame(WINDOW, seed=9)))

    async def counted() -> dict[str, Any] | None:
        versions = (await service.client.get(f"/models/{name}/versions")).json()
        mine = [v for v in versions if v["version"] == untagged and v["windows"] >= 1]
        return mine[0] if mine else None

    status = await eventually(counted, timeout=60)
    assert status["has_reference"] is False
    assert status["unreferenced_rows"] == WINDOW
    # Not an error: no alias.set of the model went to the dead-letter topic.
    dead = await read_all(service.bootstrap_servers, dlq_topic("registry.models"), timeout=3)
    assert [r for r in dead if r.key == name.encode()] == []
