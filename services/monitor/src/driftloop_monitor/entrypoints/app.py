"""The monitor service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.errors import mlflow_error_body
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_monitor.entrypoints.consumers import HANDLERS
from driftloop_monitor.entrypoints.routers import ROUTERS
from driftloop_monitor.entrypoints.stream import MonitorStream, monitor_stream
from driftloop_monitor.service_layer.bootstrap import bootstrap
from driftloop_monitor.settings import MonitorSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: MonitorSettings, **stream_options: Any) -> FastAPI:
    """Build the app; the database, the broker and the stream open in its lifespan.

    Args:
        settings: The service's settings.
        stream_options: faust settings (engine ``faust``) or aiokafka consumer settings
            (engine ``bus``) of the stream processor; tests shorten session timeouts.
    """
    container = bootstrap(settings)
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        *container.bus.resources,
        container.source,  # before the stream, so it closes after the stream stops using it
    ]
    checks = dict(container.bus.checks)
    stream: MonitorStream | None = None
    if settings.consume:
        stream = monitor_stream(container, **stream_options)
        resources.append(stream)
        checks["stream"] = stream.ready

    app = create_service_app(
        settings=settings,
        title="driftloop monitor",
        description=(
            "Drift and performance monitoring of served models with Evidently. Consumes "
            "`predictions`, `labels`, `registry.models` and `trainer.models` (model "
            "documents, whose `monitor` section is the model's policy); publishes "
            "`drift.detected`, "
            "`drift.cleared` and `performance.degraded` on `monitor.alerts`."
        ),
        routers=ROUTERS,
        resources=resources,
        checks=checks,
        database=container.database,
        error_formatter=mlflow_error_body,
    )
    app.state.container = container
    app.state.stream = stream
    return app


SERVICE = ServiceDefinition(
    name="monitor", settings_cls=MonitorSettings, create_app=create_app, handlers=HANDLERS
)
