"""Tracking and registry as two replicas each over one PostgreSQL database per service:
they keep no state of their own, so the mlflow client gets the same answers from either
replica, and each registry move is published once, whichever replica made it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.testing import ServedApp
from driftloop_registry.entrypoints.app import create_app as create_registry
from driftloop_registry.settings import RegistrySettings
from driftloop_tracking.entrypoints.app import create_app as create_tracking
from driftloop_tracking.settings import TrackingSettings
from tests.fakes.common import unique

from ..bus.helpers import eventually
from ..stack import reset_mlflow_uris
from .test_registry_events import model_events, register

pytestmark = pytest.mark.integration


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_databases: Callable[[], str], broker: EmbeddedBroker
) -> Iterator[tuple[list[str], list[str]]]:
    """Two tracking and two registry replicas; the first registry reads the first tracking."""
    tracking_db, registry_db = postgres_databases(), postgres_databases()
    servers: list[ServedApp] = []
    trackings: list[str] = []
    registries: list[str] = []
    for n in range(2):
        home = tmp_path / f"replica-{n}"
        tracking = TrackingSettings(
            home=home,
            database_url=tracking_db,
            artifacts_destination=str(tmp_path / "artifacts"),  # a shared bucket's stand-in
            kafka_bootstrap_servers=broker.bootstrap_servers,
            port=free_port(),
        )
        servers.append(ServedApp(create_tracking(tracking), host=tracking.host, port=tracking.port))
        trackings.append(servers[-1].url)
    for n in range(2):
        registry = RegistrySettings(
            home=tmp_path / f"replica-{n}",
            database_url=registry_db,
            artifacts_destination=str(tmp_path / "registry-artifacts"),
            kafka_bootstrap_servers=broker.bootstrap_servers,
            port=free_port(),
            tracking_url=trackings[n],
            auth_url=trackings[n],
        )
        servers.append(ServedApp(create_registry(registry), host=registry.host, port=registry.port))
        registries.append(servers[-1].url)
    for server in servers:
        server.start()
    try:
        yield trackings, registries
    finally:
        reset_mlflow_uris()
        for server in reversed(servers):
            server.stop()


async def test_either_replica_answers_what_the_other_recorded(
    replicas: tuple[list[str], list[str]], broker: EmbeddedBroker
) -> None:
    trackings, registries = replicas
    name = unique("replicated")
    mlflow.set_tracking_uri(trackings[0])
    mlflow.set_registry_uri(registries[0])
    register(name, runs=2)  # runs, artifacts and versions through replicas 0
    MlflowClient(tracking_uri=trackings[1], registry_uri=registries[1]).set_registered_model_alias(
        name, "champion", "2"
    )
    for tracking, registry in zip(trackings, registries, strict=True):
        client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
        assert client.get_model_version_by_alias(name, "champion").version == "2"
        assert len(client.search_model_versions(f"name='{name}'")) == 2
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        assert model.metadata.run_id == client.get_model_version(name, "2").run_id

    async def moved() -> list[str] | None:
        found = [e.type for e in await model_events(broker.bootstrap_servers, name)]
        return found if len(found) >= 3 else None

    await eventually(moved, timeout=30)
    types = [e.type.rsplit(".", 2)[-2] for e in await model_events(broker.bootstrap_servers, name)]
    assert types == ["model_version", "model_version", "alias"]  # each once
