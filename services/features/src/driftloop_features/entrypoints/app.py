"""The features service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.wiring import ServiceBus, service_bus
from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.entrypoints.ingest import IngestAgent, KafkaIngestConsumer
from driftloop_features.entrypoints.routers import ROUTERS
from driftloop_features.handlers import Ingestion, Materializations
from driftloop_features.settings import FeaturesSettings
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.db import Database
from driftloop_kit.errors import Unavailable
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition

__all__ = ["SERVICE", "Bootstrapped", "bootstrap", "create_app"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@dataclass
class Bootstrapped:
    """Everything both entrypoints need, built once and not yet connected."""

    settings: FeaturesSettings
    database: Database
    bus: ServiceBus
    gateway: FeastGateway
    ingestion: Ingestion
    materializations: Materializations
    agent: IngestAgent | KafkaIngestConsumer | None


def bootstrap(settings: FeaturesSettings) -> Bootstrapped:
    """Build the service's dependencies (nothing connects until started)."""
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    gateway = FeastGateway(settings)
    ingestion = Ingestion(
        gateway=gateway,
        dead_letters=DeadLetters(bus.publisher, group=settings.ingest_group),
        database=database,
        outbox=bus.outbox,
    )
    materializations = Materializations(gateway=gateway, database=database, outbox=bus.outbox)
    agent: IngestAgent | KafkaIngestConsumer | None = None
    if settings.ingest_enabled:
        consumer = IngestAgent if settings.ingest_consumer == "faust" else KafkaIngestConsumer
        agent = consumer(settings=settings, ingestion=ingestion)
    return Bootstrapped(settings, database, bus, gateway, ingestion, materializations, agent)


def create_app(settings: FeaturesSettings) -> FastAPI:
    """Build the app; the database, Feast stores, broker and agent open in its lifespan."""
    parts = bootstrap(settings)
    feast = _FeastStores(parts.gateway, apply=settings.apply_on_startup)
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        *parts.bus.resources,
        feast,
    ]
    if parts.agent is not None:
        resources.append(parts.agent)
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
        resources=resources,
        checks={**parts.bus.checks, "feast": feast.check},
        database=parts.database,
    )
    app.state.gateway = parts.gateway
    app.state.materializations = parts.materializations
    app.state.ingestion = parts.ingestion
    app.state.agent = parts.agent
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


SERVICE = ServiceDefinition(name="features", settings_cls=FeaturesSettings, create_app=create_app)
