"""The trainer service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.consumer import bind
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_trainer.entrypoints.consumers import HANDLERS
from driftloop_trainer.entrypoints.routers import ROUTERS
from driftloop_trainer.entrypoints.schedules import ScheduleClock
from driftloop_trainer.service_layer.bootstrap import bootstrap
from driftloop_trainer.settings import TrainerSettings

__all__ = ["SERVICE", "create_app"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: TrainerSettings) -> FastAPI:
    """Build the app; the database, broker, consumer and scheduler open in its lifespan."""
    container = bootstrap(settings)
    consumer = container.bus.consumer(
        group_id=settings.consumer_group, handlers=bind(HANDLERS, container.training)
    )
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        container.registry,
        *container.bus.resources,
        # Fails the jobs a previous process left behind; cancels running ones at shutdown.
        container.training,
        consumer,
        ScheduleClock(container.training, settings.schedule_check_seconds),
    ]
    app = create_service_app(
        settings=settings,
        title="driftloop trainer",
        description=(
            "Continuous training: drift and performance alerts, new data, schedules and "
            "manual requests go through each model's trigger policy (debounce, cooldown, "
            "concurrency, dedup); jobs train, register and are evaluated against the "
            "champion, which moves only when the challenger wins. Publishes `training.*` "
            "on `trainer.jobs`."
        ),
        routers=ROUTERS,
        resources=resources,
        checks=container.bus.checks,
        database=container.database,
    )
    app.state.container = container
    app.state.consumer = consumer
    return app


SERVICE = ServiceDefinition(
    name="trainer", settings_cls=TrainerSettings, create_app=create_app, handlers=HANDLERS
)
