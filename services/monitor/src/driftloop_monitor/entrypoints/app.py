"""The monitor service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from driftloop_bus.wiring import service_bus
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.db import Database
from driftloop_kit.errors import mlflow_error_body
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_monitor.adapters.references import reference_source
from driftloop_monitor.adapters.reports import ReportFiles
from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.entrypoints.routers import ROUTERS
from driftloop_monitor.entrypoints.stream import (
    BusMonitorStream,
    FaustMonitorStream,
    MonitorStream,
)
from driftloop_monitor.service_layer.monitor import Monitor
from driftloop_monitor.settings import MonitorSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: MonitorSettings, **stream_options: Any) -> FastAPI:
    """Build the app; the database, the broker and the stream open in its lifespan.

    Args:
        settings: The service's settings.
        stream_options: faust settings (engine ``faust``) or aiokafka consumer settings
            (engine ``bus``) of the stream processor; tests shorten session timeouts.
    """
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    store = MonitorStore(database)
    references = reference_source(
        settings.reference_source,
        template=settings.reference_uri_template,
        registry_url=settings.registry_url,
        tracking_url=settings.tracking_url,
    )
    monitor = Monitor(
        store=store,
        outbox=bus.outbox,
        files=ReportFiles(settings.report_root, kept_windows=settings.kept_windows),
        references=references,
        base_url=settings.base_url,
        window_rows=settings.window_rows,
        window_seconds=settings.window_seconds,
    )
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        *bus.resources,
        references,  # before the stream, so it closes after the stream stops using it
    ]
    checks = dict(bus.checks)
    stream: MonitorStream | None = None
    if settings.consume:
        common: dict[str, Any] = {
            "monitor": monitor,
            "publisher": bus.publisher,
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "group": settings.consumer_group,
            "label_ttl": settings.label_ttl_seconds,
        }
        if settings.engine == "bus":
            stream = BusMonitorStream(**common, consumer_options=stream_options or None)
        else:
            stream = FaustMonitorStream(
                **common, data_dir=settings.data_dir / "faust", **stream_options
            )
        resources.append(stream)
        checks["stream"] = stream.ready

    app = create_service_app(
        settings=settings,
        title="driftloop monitor",
        description=(
            "Drift and performance monitoring of served models with Evidently. Consumes "
            "`predictions`, `labels` and `registry.models`; publishes `drift.detected`, "
            "`drift.cleared` and `performance.degraded` on `monitor.alerts`."
        ),
        routers=ROUTERS,
        resources=resources,
        checks=checks,
        database=database,
        error_formatter=mlflow_error_body,
    )
    app.state.store = store
    app.state.monitor = monitor
    app.state.stream = stream
    return app


SERVICE = ServiceDefinition(name="monitor", settings_cls=MonitorSettings, create_app=create_app)
