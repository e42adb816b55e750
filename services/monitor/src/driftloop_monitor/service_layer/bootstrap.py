"""The monitor's composition root: adapters chosen from the settings, use cases on top.

``create_app`` calls :func:`bootstrap` once; the routers and the stream engine read the
:class:`MonitorContainer`. Building it opens no connection (the app's lifespan does).
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop_bus.wiring import ServiceBus, database_and_bus
from driftloop_events.topics import TOPICS
from driftloop_kit.auth import Role, ServiceAuth
from driftloop_kit.db import Database
from driftloop_monitor.adapters.references import ReferenceSource, reference_source
from driftloop_monitor.adapters.reports import ReportFiles
from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.adapters.waiting import MemoryWaiting, TableWaiting
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.monitor import Monitor
from driftloop_monitor.settings import MonitorSettings

__all__ = ["MonitorContainer", "bootstrap"]


@dataclass
class MonitorContainer:
    """Everything the entrypoints need, built once and not yet connected."""

    settings: MonitorSettings
    database: Database
    bus: ServiceBus
    store: MonitorStore
    files: ReportFiles
    #: Where a new champion's reference data comes from (opened by the app's lifespan).
    source: ReferenceSource
    #: Where predictions wait for their label: a faust table for the ``faust`` engine
    #: (the engine attaches it to its app), memory for ``bus``.
    waiting: TableWaiting | MemoryWaiting
    #: The use cases (the stream handlers' dependency).
    monitor: Monitor


def bootstrap(settings: MonitorSettings) -> MonitorContainer:
    """Build the service's dependencies (nothing connects until started)."""
    database, bus = database_and_bus(settings)
    store = MonitorStore(database)
    files = ReportFiles(settings.report_root, kept_windows=settings.kept_windows)
    source = reference_source(
        settings.reference_source,
        template=settings.reference_uri_template,
        registry_url=settings.registry_url,
        tracking_url=settings.tracking_url,
        allowed_bases=tuple(settings.reference_allowed_urls),
        max_bytes=settings.reference_max_bytes,
        auth=ServiceAuth.for_service(settings, Role.READER),
    )
    waiting: TableWaiting | MemoryWaiting
    journal: StateJournal | None = None
    if settings.stream_engine == "faust":
        # predictions and labels share the model name key and the partition count.
        waiting = TableWaiting(partitions=TOPICS["predictions"].partitions)
    else:
        # The durable engine: memory in front, the batch's changes stored by the engine.
        waiting = MemoryWaiting()
        journal = StateJournal()
    monitor = Monitor.wire(
        store=store,
        outbox=bus.outbox,
        files=files,
        source=source,
        waiting=waiting,
        base_url=settings.base_url,
        window_rows=settings.window_rows,
        window_seconds=settings.window_seconds,
        label_ttl=settings.label_ttl_seconds,
        journal=journal,
    )
    return MonitorContainer(
        settings=settings,
        database=database,
        bus=bus,
        store=store,
        files=files,
        source=source,
        waiting=waiting,
        monitor=monitor,
    )
