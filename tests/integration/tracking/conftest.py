"""The real tracking service, served by uvicorn on a free port, for the mlflow client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.testing import ServedApp
from driftloop_tracking.entrypoints.app import create_app
from driftloop_tracking.settings import TrackingSettings


class RunningServer(ServedApp):
    """The tracking service served on its settings' host and port."""

    def __init__(self, settings: TrackingSettings) -> None:
        super().__init__(
            create_app(settings), host=settings.host, port=settings.port, name="tracking"
        )
        self.settings = settings


def tracking_settings(
    *, home: Path, database_url: str, bootstrap_servers: str, **overrides: Any
) -> TrackingSettings:
    """Settings for a test server on a free port."""
    return TrackingSettings(
        home=home,
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        **overrides,
    )


@pytest.fixture
def tracking_server(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> Iterator[RunningServer]:
    """The tracking service on SQLite and on PostgreSQL (via ``database_url``)."""
    server = RunningServer(
        tracking_settings(
            home=tmp_path / "home",
            database_url=database_url,
            bootstrap_servers=broker.bootstrap_servers,
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracking_url(tracking_server: RunningServer) -> str:
    """Base URL of the running tracking service (``MLFLOW_TRACKING_URI``)."""
    return tracking_server.url
