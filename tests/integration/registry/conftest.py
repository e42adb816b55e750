"""The registry served beside a real tracking service, for the official mlflow client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import mlflow
import pytest

from driftloop_bus.embedded import EmbeddedBroker

from ..stack import Stack, reset_mlflow_uris, running_stack


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
    with running_stack(
        home=tmp_path_factory.mktemp("home"),
        registry_database=registry_database,
        bootstrap_servers=broker.bootstrap_servers,
    ) as running:
        yield running


@pytest.fixture
def mlflow_at(stack: Stack) -> Iterator[Stack]:
    """The mlflow client pointed at the stack: tracking URI and registry URI."""
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        yield stack
    finally:
        reset_mlflow_uris()
