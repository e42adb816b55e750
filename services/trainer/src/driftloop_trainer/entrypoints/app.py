"""The trainer service's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.wiring import ServiceBus, service_bus
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.db import Database
from driftloop_kit.migrations import SchemaMigrations
from driftloop_kit.service import ServiceDefinition
from driftloop_trainer.adapters.executors import Executor, KubernetesExecutor, LocalExecutor
from driftloop_trainer.adapters.registry import RegistryClient
from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.entrypoints.consumers import TriggerHandlers
from driftloop_trainer.entrypoints.routers import ROUTERS
from driftloop_trainer.runtime import REPORT_URL_ENV
from driftloop_trainer.service_layer.training import Endpoints, Training
from driftloop_trainer.settings import TrainerSettings

__all__ = ["SERVICE", "Bootstrapped", "bootstrap", "create_app"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@dataclass
class Bootstrapped:
    """Everything the entrypoints need, built once and not yet connected."""

    settings: TrainerSettings
    database: Database
    bus: ServiceBus
    store: TrainerStore
    registry: RegistryClient
    training: Training
    consumer: ConsumerRunner


def _executor(settings: TrainerSettings) -> Executor:
    if settings.executor == "kubernetes":
        return KubernetesExecutor(
            namespace=settings.kubernetes_namespace,
            env={REPORT_URL_ENV: settings.base_url},
        )
    return LocalExecutor(
        settings.python_executable,
        entry_points=[config.job.entry_point for config in settings.models.values()],
        warm=settings.warm_process,
    )


def bootstrap(settings: TrainerSettings) -> Bootstrapped:
    """Build the service's dependencies (nothing connects until started)."""
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    store = TrainerStore(database=database, outbox=bus.outbox, consumer=settings.consumer_group)
    registry = RegistryClient(settings.registry_url, timeout=settings.http_timeout_seconds)
    training = Training(
        models=settings.models,
        store=store,
        registry=registry,
        executor=_executor(settings),
        endpoints=Endpoints(
            tracking_url=settings.tracking_url,
            registry_url=settings.registry_url,
            features_url=settings.features_url,
            experiment_name=settings.experiment_name,
            jobs_path=settings.jobs_path,
        ),
    )
    consumer = ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        handlers=TriggerHandlers(training).table(),
        publisher=bus.publisher,
    )
    return Bootstrapped(settings, database, bus, store, registry, training, consumer)


def create_app(settings: TrainerSettings) -> FastAPI:
    """Build the app; the database, broker, consumer and scheduler open in its lifespan."""
    parts = bootstrap(settings)
    resources: list[Resource] = [
        SchemaMigrations(settings.database_url, MIGRATIONS),
        parts.registry,
        *parts.bus.resources,
        _Jobs(parts.training),
        parts.consumer,
        _Scheduler(parts.training, settings.schedule_check_seconds),
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
        checks=parts.bus.checks,
        database=parts.database,
    )
    app.state.training = parts.training
    app.state.store = parts.store
    app.state.consumer = parts.consumer
    return app


class _Jobs:
    """Fails the jobs a previous process left behind; cancels running ones at shutdown."""

    def __init__(self, training: Training) -> None:
        self.training = training

    async def start(self) -> None:
        await self.training.start()

    async def stop(self) -> None:
        await self.training.stop()


class _Scheduler:
    """Checks the models' schedules every ``interval`` seconds."""

    def __init__(self, training: Training, interval: float) -> None:
        self.training = training
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if any(c.policy.schedule for c in self.training.models.values()):
            self._task = asyncio.create_task(self._run(), name="trainer-schedules")

    async def _run(self) -> None:
        since = datetime.now(UTC)
        fired: dict[str, datetime] = {}
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.training.fire_schedules(now=datetime.now(UTC), since=since, fired=fired)
            except Exception:
                log.exception("schedule check failed; next check in %s s", self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


SERVICE = ServiceDefinition(name="trainer", settings_cls=TrainerSettings, create_app=create_app)
