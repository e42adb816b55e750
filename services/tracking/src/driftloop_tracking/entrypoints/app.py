"""The tracking service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_kit.app import create_service_app
from driftloop_kit.migrations import upgrade_async
from driftloop_kit.service import ServiceDefinition
from driftloop_tracking.entrypoints.consumers import HANDLERS
from driftloop_tracking.entrypoints.fast_routes import FAST_ROUTES
from driftloop_tracking.entrypoints.routers import ROUTERS
from driftloop_tracking.service_layer.bootstrap import bootstrap
from driftloop_tracking.service_layer.experiments import Experiments
from driftloop_tracking.settings import TrackingSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: TrackingSettings) -> FastAPI:
    """Build the app; the database, broker and artifact store open in its lifespan."""
    container = bootstrap(settings)
    app = create_service_app(
        settings=settings,
        title="driftloop tracking",
        description=(
            "MLflow-compatible experiment tracking (point `MLFLOW_TRACKING_URI` here). "
            "Publishes `run.created` and `run.finished` on `tracking.runs`."
        ),
        routers=ROUTERS,
        fast_routes=FAST_ROUTES,
        # Artifact uploads stream to the artifact store, whatever their size.
        unbounded_paths=("/api/2.0/mlflow-artifacts/",),
        # Migrations first: the outbox relay reads its table as soon as it starts.
        resources=[
            _Migrations(settings.database_url, container.experiments),
            *container.bus.resources,
        ],
        checks=container.bus.checks,
        database=container.database,
        # This service keeps the suite's credentials: its own tables, not a call to itself.
        credentials=container.credentials,
    )
    app.state.container = container
    app.state.credentials = container.credentials
    app.state.runs = container.runs
    app.state.experiments = container.experiments
    app.state.logged_models = container.logged_models
    app.state.artifacts = container.artifacts
    app.state.artifact_listing = container.artifact_listing
    return app


class _Migrations:
    """Brings the schema up to date and creates the default experiment at start-up."""

    def __init__(self, database_url: str, experiments: Experiments) -> None:
        self.database_url = database_url
        self.experiments = experiments

    async def start(self) -> None:
        await upgrade_async(self.database_url, MIGRATIONS)
        await self.experiments.ensure_default()

    async def stop(self) -> None:
        """Nothing to release."""


SERVICE = ServiceDefinition(
    name="tracking", settings_cls=TrackingSettings, create_app=create_app, handlers=HANDLERS
)
