"""The registry service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.wiring import service_bus
from driftloop_kit.app import create_service_app
from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.db import Database
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_registry.adapters.model_files import ModelFiles
from driftloop_registry.adapters.store import RegistryStore
from driftloop_registry.adapters.tracking import TrackingClient
from driftloop_registry.entrypoints.routers import ROUTERS
from driftloop_registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: RegistrySettings) -> FastAPI:
    """Build the app; the database, broker and tracking client open in its lifespan."""
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
    app = create_service_app(
        settings=settings,
        title="driftloop registry",
        description=(
            "MLflow-compatible model registry (point `MLFLOW_REGISTRY_URI` here) with "
            "lineage and checksummed model files. Publishes `model_version.*` and "
            "`alias.*` on `registry.models`."
        ),
        routers=ROUTERS,
        # Migrations first: the outbox relay reads its table as soon as it starts.
        resources=[SchemaMigrations(settings.database_url, MIGRATIONS), tracking, *bus.resources],
        checks=bus.checks,
        database=database,
    )
    app.state.store = store
    return app


SERVICE = ServiceDefinition(name="registry", settings_cls=RegistrySettings, create_app=create_app)
