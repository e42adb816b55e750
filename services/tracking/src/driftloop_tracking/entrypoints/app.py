"""The tracking service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.wiring import service_bus
from driftloop_kit.app import create_service_app
from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.db import Database
from driftloop_kit.migrations import upgrade_async
from driftloop_kit.service import ServiceDefinition
from driftloop_tracking.adapters.store import TrackingStore
from driftloop_tracking.entrypoints.routers import FAST_ROUTES, ROUTERS
from driftloop_tracking.settings import TrackingSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: TrackingSettings) -> FastAPI:
    """Build the app; the database, broker and artifact store open in its lifespan."""
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    artifacts = ArtifactRepository(settings.artifact_root)
    store = TrackingStore(database=database, outbox=bus.outbox, artifact_root=artifacts.root)

    app = create_service_app(
        settings=settings,
        title="driftloop tracking",
        description=(
            "MLflow-compatible experiment tracking (point `MLFLOW_TRACKING_URI` here). "
            "Publishes `run.created` and `run.finished` on `tracking.runs`."
        ),
        routers=ROUTERS,
        fast_routes=FAST_ROUTES,
        # Migrations first: the outbox relay reads its table as soon as it starts.
        resources=[_Migrations(settings.database_url, store), *bus.resources],
        checks=bus.checks,
        database=database,
    )
    app.state.store = store
    app.state.artifacts = artifacts
    return app


class _Migrations:
    """Brings the schema up to date and creates the default experiment at start-up."""

    def __init__(self, database_url: str, store: TrackingStore) -> None:
        self.database_url = database_url
        self.store = store

    async def start(self) -> None:
        await upgrade_async(self.database_url, MIGRATIONS)
        await self.store.ensure_default_experiment()

    async def stop(self) -> None:
        """Nothing to release."""


SERVICE = ServiceDefinition(name="tracking", settings_cls=TrackingSettings, create_app=create_app)
