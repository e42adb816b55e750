"""``bootstrap(settings)``: the tracking service's dependencies, built once.

The HTTP app takes what it needs from the :class:`TrackingContainer`; nothing in it
connects until the app's lifespan starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop_bus.wiring import ServiceBus, database_and_bus
from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.auth import TokenSigner
from driftloop_kit.db import Database
from driftloop_tracking.adapters.credentials import SqlCredentialStore
from driftloop_tracking.adapters.logged_models import SqlLoggedModelStore
from driftloop_tracking.adapters.store import SqlTrackingStore
from driftloop_tracking.service_layer.artifacts import ArtifactListing
from driftloop_tracking.service_layer.credentials import Credentials
from driftloop_tracking.service_layer.experiments import Experiments
from driftloop_tracking.service_layer.logged_models import LoggedModels
from driftloop_tracking.service_layer.runs import Runs
from driftloop_tracking.settings import TrackingSettings

__all__ = ["TrackingContainer", "bootstrap"]


@dataclass
class TrackingContainer:
    """Everything the app needs, built once and not yet connected."""

    experiments: Experiments
    runs: Runs
    logged_models: LoggedModels
    artifact_listing: ArtifactListing
    artifacts: ArtifactRepository
    credentials: Credentials
    #: Publishes ``run.*`` on ``tracking.runs`` through the outbox.
    bus: ServiceBus
    database: Database
    settings: TrackingSettings


def bootstrap(settings: TrackingSettings) -> TrackingContainer:
    """Build the service's dependencies (nothing connects until started)."""
    artifacts = ArtifactRepository(settings.artifact_root)
    store, models = SqlTrackingStore(), SqlLoggedModelStore()
    database, bus = database_and_bus(settings)
    runs = Runs(database=database, store=store, models=models, outbox=bus.outbox)
    return TrackingContainer(
        settings=settings,
        database=database,
        bus=bus,
        artifacts=artifacts,
        experiments=Experiments(database=database, store=store),
        runs=runs,
        logged_models=LoggedModels(database=database, store=models, runs=store),
        artifact_listing=ArtifactListing(runs=runs, files=artifacts),
        credentials=Credentials(
            SqlCredentialStore(database), TokenSigner(settings.secret_key.get_secret_value())
        ),
    )
