"""The registry served beside a real tracking service, for the official mlflow client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.testing import ServedApp
from driftloop_registry.entrypoints.app import create_app as create_registry
from driftloop_registry.settings import RegistrySettings
from driftloop_tracking.entrypoints.app import create_app as create_tracking
from driftloop_tracking.settings import TrackingSettings


@dataclass
class Stack:
    """A tracking and a registry service, the registry reading from the tracking one."""

    tracking_url: str
    registry_url: str
    registry: RegistrySettings


def start_stack(
    *, home: Path, registry_database: str, bootstrap_servers: str
) -> tuple[Stack, list[ServedApp]]:
    """Start tracking (SQLite) and a registry on ``registry_database``; stop them after."""
    tracking_settings = TrackingSettings(
        home=home,
        database_url=f"sqlite:///{home / 'tracking.db'}",
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
    )
    tracking = ServedApp(
        create_tracking(tracking_settings),
        host=tracking_settings.host,
        port=tracking_settings.port,
        name="tracking",
    )
    registry_settings = RegistrySettings(
        home=home,
        database_url=registry_database,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        tracking_url=tracking.url,
    )
    registry = ServedApp(
        create_registry(registry_settings),
        host=registry_settings.host,
        port=registry_settings.port,
        name="registry",
    )
    servers = [tracking, registry]
    for server in servers:
        server.start()
    return Stack(tracking.url, registry.url, registry_settings), servers


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The registry's database: SQLite and PostgreSQL, one per module run."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}"
    create: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return create()


@pytest.fixture(scope="module")
def stack(
    registry_database: str, tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[Stack]:
    """Tracking and registry for the module's tests, on the session broker."""
    running, servers = start_stack(
        home=tmp_path_factory.mktemp("home"),
        registry_database=registry_database,
        bootstrap_servers=broker.bootstrap_servers,
    )
    try:
        yield running
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def mlflow_at(stack: Stack) -> Iterator[Stack]:
    """The mlflow client pointed at the stack: tracking URI and registry URI."""
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        yield stack
    finally:
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
