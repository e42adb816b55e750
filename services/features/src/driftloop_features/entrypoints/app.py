"""The features service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.entrypoints.consumers import HANDLERS, LABEL_HANDLERS, label_consumer
from driftloop_features.entrypoints.fast_routes import FAST_ROUTES
from driftloop_features.entrypoints.ingest import ingest_engine
from driftloop_features.entrypoints.routers import ROUTERS
from driftloop_features.service_layer.bootstrap import bootstrap
from driftloop_features.settings import FeaturesSettings
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.errors import Unavailable
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition

__all__ = ["SERVICE", "create_app"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: FeaturesSettings) -> FastAPI:
    """Build the app; the database, Feast stores, broker and agent open in its lifespan."""
    container = bootstrap(settings)
    engine = ingest_engine(container)
    feast = _FeastStores(container.gateway, apply=settings.apply_on_startup)
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        *container.bus.resources,
        feast,
    ]
    if engine is not None:
        resources.append(engine)
    if settings.labels_enabled:
        resources.append(label_consumer(container))
    app = create_service_app(
        settings=settings,
        title="driftloop features",
        description=(
            "Feast behind a service: the online API of `feast serve` (`/get-online-features`, "
            "`/push`, `/materialize`, `/materialize-incremental`), point-in-time-correct "
            "historical retrieval (`/get-historical-features`), the repo (`/repo`), and "
            "ingestion of `features.ingest` from Kafka. Publishes `features.ingested` and "
            "`features.materialized` on `features.events`."
        ),
        routers=ROUTERS,
        fast_routes=FAST_ROUTES,
        resources=resources,
        checks={**container.bus.checks, "feast": feast.check},
        database=container.database,
    )
    app.state.gateway = container.gateway
    app.state.materializations = container.materializations
    app.state.labels = container.labels
    app.state.ingestion = container.ingestion
    app.state.agent = engine
    return app


class _FeastStores:
    """Opens the Feast stores at start-up and applies the repo."""

    def __init__(self, gateway: FeastGateway, *, apply: bool) -> None:
        self.gateway = gateway
        self.apply = apply
        self.ready = False

    async def start(self) -> None:
        if self.apply:
            summary = await asyncio.to_thread(self.gateway.apply)
            log.info("applied the Feast repo", extra={"applied": summary.applied})
        else:
            await asyncio.to_thread(self.gateway.refresh)
        await asyncio.to_thread(self.gateway.tune_online_store)
        await self.gateway.store.initialize()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        try:
            await self.gateway.store.close()
        finally:
            self.gateway.close()

    async def check(self) -> None:
        """Readiness: the repo was applied and the registry answers."""
        if not self.ready:
            raise Unavailable("the Feast repo is not applied yet")
        await asyncio.to_thread(self.gateway.store.list_feature_views, allow_cache=True)


SERVICE = ServiceDefinition(
    name="features",
    settings_cls=FeaturesSettings,
    create_app=create_app,
    handlers={**HANDLERS, **LABEL_HANDLERS},
)
