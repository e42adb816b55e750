"""The registry service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.wiring import service_bus
from driftloop_kit.app import create_service_app
from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.db import Database
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_registry.adapters.model_files import ModelFiles
from driftloop_registry.adapters.store import RegistryStore
from driftloop_registry.adapters.tracking import TrackingClient
from driftloop_registry.entrypoints.consumers import LineageHandlers
from driftloop_registry.entrypoints.routers import ROUTERS
from driftloop_registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: RegistrySettings) -> FastAPI:
    """Build the app; the database, broker, consumer and tracking client open in its lifespan."""
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    tracking = TrackingClient(settings.tracking_url, timeout=settings.tracking_timeout_seconds)
    files = ModelFiles(ArtifactRepository(settings.artifact_root), tracking)
    store = RegistryStore(
        database=database,
        outbox=bus.outbox,
        files=files,
        tracking=tracking,
        base_url=settings.base_url,
    )
    consumer = ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        handlers=LineageHandlers(database=database, consumer=settings.consumer_group).table(),
        publisher=bus.publisher,
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
            tracking,
            *bus.resources,
            consumer,
        ],
        checks=bus.checks,
        database=database,
    )
    app.state.store = store
    app.state.consumer = consumer
    return app


SERVICE = ServiceDefinition(name="registry", settings_cls=RegistrySettings, create_app=create_app)
