"""The real tracking service, served by uvicorn on a free port, for the mlflow client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_tracking.entrypoints.app import create_app
from driftloop_tracking.settings import TrackingSettings


class RunningServer:
    """A uvicorn server in a background thread."""

    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self.url = f"http://{settings.host}:{settings.port}"
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if not self.thread.is_alive():
                raise RuntimeError("tracking server exited during start-up")
            time.sleep(0.05)
        raise RuntimeError(f"tracking server did not start in {timeout}s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def tracking_settings(
    *, home: Path, database_url: str, bootstrap_servers: str, **overrides: object
) -> TrackingSettings:
    """Settings for a test server on a free port."""
    return TrackingSettings(
        home=home,
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        **overrides,  # type: ignore[arg-type]
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
