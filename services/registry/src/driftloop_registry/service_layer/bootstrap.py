"""``bootstrap(settings)``: the registry's dependencies, built once.

Both entrypoints (the HTTP app and the lineage consumer) take what they need from
the :class:`RegistryContainer`; nothing in it connects until the app's lifespan
starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop_bus.wiring import ServiceBus, database_and_bus
from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.auth import Role, ServiceAuth
from driftloop_kit.db import Database
from driftloop_registry.adapters.inbox import Inbox
from driftloop_registry.adapters.lineage_log import LineageLog
from driftloop_registry.adapters.model_files import ModelFiles
from driftloop_registry.adapters.store import RegistryStore
from driftloop_registry.adapters.tracking import TrackingClient
from driftloop_registry.service_layer.aliases import Aliases
from driftloop_registry.service_layer.lineage import LineageQueries, LineageRecording
from driftloop_registry.service_layer.models import RegisteredModels
from driftloop_registry.service_layer.registration import Registration
from driftloop_registry.service_layer.stores import Stores
from driftloop_registry.service_layer.versions import ModelVersions
from driftloop_registry.settings import RegistrySettings

__all__ = ["RegistryContainer", "bootstrap"]


@dataclass
class RegistryContainer:
    """Everything both entrypoints need, built once and not yet connected."""

    settings: RegistrySettings
    database: Database
    bus: ServiceBus
    #: Opened and closed with the app (a resource).
    tracking: TrackingClient
    files: ModelFiles
    registration: Registration
    models: RegisteredModels
    versions: ModelVersions
    aliases: Aliases
    lineage: LineageQueries
    #: The lineage consumer's use case (the handlers' dependency).
    recording: LineageRecording


def bootstrap(settings: RegistrySettings) -> RegistryContainer:
    """Build the service's dependencies (nothing connects until started)."""
    database, bus = database_and_bus(settings)
    tracking = TrackingClient(
        settings.tracking_url,
        timeout=settings.tracking_timeout_seconds,
        auth=ServiceAuth.for_service(settings, Role.READER),
    )
    files = ModelFiles(ArtifactRepository(settings.artifact_root), tracking)
    log = LineageLog()
    stores = Stores(database=database, store=RegistryStore(), outbox=bus.outbox, log=log)
    models = RegisteredModels(stores=stores, files=files)
    versions = ModelVersions(stores=stores, files=files, base_url=settings.base_url)
    return RegistryContainer(
        settings=settings,
        database=database,
        bus=bus,
        tracking=tracking,
        files=files,
        registration=Registration(stores=stores, files=files, tracking=tracking, versions=versions),
        models=models,
        versions=versions,
        aliases=Aliases(stores=stores),
        lineage=LineageQueries(database=database, log=log, models=models, versions=versions),
        recording=LineageRecording(
            database=database, log=log, inbox=Inbox(settings.consumer_group)
        ),
    )
