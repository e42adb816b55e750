"""The registry service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.consumer import bind
from driftloop_kit.app import create_service_app
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_registry.entrypoints.consumers import HANDLERS
from driftloop_registry.entrypoints.routers import ROUTERS
from driftloop_registry.service_layer.bootstrap import bootstrap
from driftloop_registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: RegistrySettings) -> FastAPI:
    """Build the app; the database, broker, consumer and tracking client open in its lifespan."""
    container = bootstrap(settings)
    consumer = container.bus.consumer(
        group_id=settings.consumer_group, handlers=bind(HANDLERS, container.recording)
    )
    app = create_service_app(
        settings=settings,
        title="driftloop registry",
        description=(
            "MLflow-compatible model registry (point `MLFLOW_REGISTRY_URI` here) with "
            "lineage and checksummed model files. Publishes `model_version.*` and "
            "`alias.*` on `registry.models`; keeps each model's lineage log from them "
            "and from `drift.*`, `performance.degraded` and `training.*` "
            "(`/api/2.0/driftloop/lineage`)."
        ),
        routers=ROUTERS,
        # Migrations first: the outbox relay reads its table as soon as it starts.
        resources=[
            SchemaMigrations(settings.database_url, MIGRATIONS),
            container.tracking,
            *container.bus.resources,
            consumer,
        ],
        checks=container.bus.checks,
        database=container.database,
    )
    app.state.container = container
    app.state.consumer = consumer
    return app


SERVICE = ServiceDefinition(
    name="registry", settings_cls=RegistrySettings, create_app=create_app, handlers=HANDLERS
)
