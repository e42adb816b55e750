"""``bootstrap(settings)``: the features service's dependencies, built once.

Both entrypoints (the HTTP app and the ingestion engine) take what they need from the
:class:`FeaturesContainer`; nothing in it connects until the app's lifespan starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.wiring import ServiceBus, database_and_bus
from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.service_layer.ingestion import Ingestion, RowBatch
from driftloop_features.service_layer.labels import Labels
from driftloop_features.service_layer.materializations import Materializations
from driftloop_features.settings import FeaturesSettings
from driftloop_kit.db import Database

__all__ = ["FeaturesContainer", "bootstrap"]


@dataclass
class FeaturesContainer:
    """Everything both entrypoints need, built once and not yet connected."""

    settings: FeaturesSettings
    database: Database
    bus: ServiceBus
    gateway: FeastGateway
    #: Where rows that cannot be ingested go (``features.ingest.dlq``).
    dead_letters: DeadLetters
    ingestion: Ingestion
    #: The rows read since the last ingested batch (the handlers' dependency).
    rows: RowBatch
    materializations: Materializations
    labels: Labels


def bootstrap(settings: FeaturesSettings) -> FeaturesContainer:
    """Build the service's dependencies (nothing connects until started)."""
    database, bus = database_and_bus(settings)
    gateway = FeastGateway(settings)
    dead_letters = DeadLetters(bus.publisher, group=settings.ingest_group)
    return FeaturesContainer(
        settings=settings,
        database=database,
        bus=bus,
        gateway=gateway,
        dead_letters=dead_letters,
        ingestion=Ingestion(
            gateway=gateway, dead_letters=dead_letters, database=database, outbox=bus.outbox
        ),
        rows=RowBatch(),
        materializations=Materializations(gateway=gateway, database=database, outbox=bus.outbox),
        labels=Labels(database=database, outbox=bus.outbox),
    )
