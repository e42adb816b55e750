"""Hot swap under load, a broken version refused, the prediction log across a broker outage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from driftloop_kit.testing import ServedApp, auth_headers

from ..bus.helpers import eventually, read_topic
from ..stack import Stack
from .conftest import Models, serving_settings, start_serving

pytestmark = pytest.mark.integration

ROW = [5.1, 3.5, 1.4, 0.2]


def infer_body(request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]
    }
    if request_id:
        body["id"] = request_id
    return body


class Load:
    """Concurrent clients sending requests until stopped; every outcome is kept."""

    def __init__(self, url: str, model: str, clients: int = 4) -> None:
        self.url = f"{url}/v2/models/{model}/infer"
        self.clients = clients
        self.failures: list[str] = []
        self.sent_ids: list[str] = []
        self.started: dict[str, float] = {}
        self.versions: list[str] = []
        self._stop = asyncio.Event()
        self._count = 0

    async def _client(self, index: int) -> None:
        async with httpx.AsyncClient(headers=auth_headers(), timeout=10) as client:
            while not self._stop.is_set():
                self._count += 1
                request_id = f"req-{index}-{self._count}"
                self.started[request_id] = time.monotonic()
                try:
                    response = await client.post(self.url, json=infer_body(request_id))
                except httpx.HTTPError as error:
                    self.failures.append(f"{request_id}: {error!r}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{request_id}: {response.status_code} {response.text}")
                    continue
                self.sent_ids.append(request_id)
                self.versions.append(response.json()["model_version"])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)


async def serving_ready(url: str) -> bool:
    """Models loaded and alias events followed."""
    async with httpx.AsyncClient(headers=auth_headers()) as client:
        if (await client.get(f"{url}/v2/health/ready")).status_code != 200:
            return False
        details = (await client.get(f"{url}/readyz")).json()["details"]["models"]
        return bool(details["alias events"] == "following")


@contextlib.asynccontextmanager
async def serving(settings: Any) -> AsyncIterator[ServedApp]:
    server = await asyncio.to_thread(start_serving, settings)
    try:
        await eventually(lambda: serving_ready(server.url), timeout=60)
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def move_alias(name: str, version: str) -> None:
    await asyncio.to_thread(MlflowClient().set_registered_model_alias, name, "champion", version)


async def test_ten_alias_moves_under_load_fail_no_request_and_switch_within_seconds(
    serving_stack: Stack, iris_models: Models, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    name = iris_models.name
    # Reconcile rarely: the swaps must come from the alias.set events.
    settings = serving_settings(
        serving_stack,
        tmp_path,
        broker.bootstrap_servers,
        models=name,
        reconcile_interval_seconds=600,
    )
    switch_times = []
    try:
        async with serving(settings) as server, Load(server.url, name).running() as load:
            for move in range(10):
                target = "2" if move % 2 == 0 else "1"
                moved_at = time.monotonic()
                await move_alias(name, target)
                seen = len(load.versions)

                async def switched(seen: int = seen, target: str = target) -> bool:
                    return target in load.versions[seen:]

                await eventually(switched, timeout=20, interval=0.02)
                switch_times.append(time.monotonic() - moved_at)
    finally:
        await move_alias(name, "1")
    assert load.failures == []
    assert len(load.versions) > 100
    assert max(switch_times) < 20


async def test_a_version_that_cannot_load_is_refused_and_the_old_one_keeps_answering(
    serving_stack: Stack, iris_models: Models, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    name = iris_models.name
    folder = tmp_path / "broken"
    mlflow.sklearn.save_model(iris_models.first, folder, pip_requirements=["scikit-learn"])
    (folder / "model.skops").write_bytes(b"this is not a skops file")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    client = MlflowClient()
    broken = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    settings = serving_settings(
        serving_stack,
        tmp_path / "home",
        broker.bootstrap_servers,
        models=name,
        reconcile_interval_seconds=1,
    )
    try:
        async with (
            serving(settings) as server,
            httpx.AsyncClient(headers=auth_headers(), base_url=server.url) as http,
        ):
            await move_alias(name, broken.version)

            async def refused() -> dict[str, Any] | None:
                details = (await http.get("/readyz")).json()["details"]["models"]
                failure = details.get(f"{name}@champion load failure")
                return details if failure else None

            details = await eventually(refused, timeout=30)
            assert f"version {broken.version}" in details[f"{name}@champion load failure"]
            assert "still serving version 1" in details[f"{name}@champion load failure"]
            answer = await http.post(f"/v2/models/{name}/infer", json=infer_body())
            assert answer.status_code == 200
            assert answer.json()["model_version"] == "1"

            # Ready (the old version answers), once the model documents are read too: a
            # group join on the embedded broker can take seconds.
            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready, timeout=60)
            metrics = (await http.get("/metrics")).text
            assert (
                f'driftloop_serving_model_load_failures_total{{alias="champion",model="{name}"}}'
                in metrics
            )
    finally:
        await move_alias(name, "1")


async def test_with_the_broker_down_for_30s_no_request_fails_and_every_record_arrives(
    serving_stack: Stack, iris_models: Models, tmp_path: Path, own_broker: EmbeddedBroker
) -> None:
    name = iris_models.name
    settings = serving_settings(serving_stack, tmp_path, own_broker.bootstrap_servers, models=name)
    async with serving(settings) as server:
        async with Load(server.url, name, clients=2).running() as load:
            await asyncio.sleep(2)
            own_broker.stop()
            stopped = time.monotonic()
            await asyncio.sleep(30)
            own_broker.start()
            await asyncio.sleep(2)
        assert load.failures == []
        # Requests made once it was down: a record of an earlier one may have been
        # acknowledged by the in-memory broker just before it stopped, and died with it.
        sent = {i for i in load.sent_ids if load.started[i] > stopped}
        assert len(sent) > 200

        async def all_arrived() -> set[str] | None:
            records = await read_topic(
                own_broker.bootstrap_servers, "predictions", expected=len(sent), timeout=5
            )
            ids = set()
            for record in records:
                event = from_record(record.value, record.headers)
                logged: serving_events.PredictionLogged = event.data
                ids.add(logged.request_id)
            return ids if sent <= ids else None

        # What the in-memory broker held before it stopped died with it; every record
        # of a request answered while it was down (spilled, then sent) must arrive.
        arrived = await eventually(all_arrived, timeout=90, interval=1)
    assert sent <= arrived
