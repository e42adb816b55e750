"""The serving service's HTTP app: ``create_app(settings)`` and its plug-in definition.

Serving keeps no database: what it serves is the registry's state (read at
start-up, followed through ``alias.*`` events and a periodic reconcile), and
its only durable state is the prediction log's spill folder. Replicas scale
out freely.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from fastapi import FastAPI

from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.publisher import Publisher
from driftloop_bus.tasks import cancel_and_wait
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_kit.app import create_service_app
from driftloop_kit.service import ServiceDefinition
from driftloop_serving.adapters.features import FeaturesClient
from driftloop_serving.adapters.models import ModelManager, Slot
from driftloop_serving.adapters.prediction_log import PredictionLog
from driftloop_serving.adapters.registry import RegistryClient
from driftloop_serving.entrypoints.routers import FAST_ROUTES, ROUTERS
from driftloop_serving.handlers import Scorer
from driftloop_serving.settings import ServingSettings

log = logging.getLogger(__name__)


def _slots(settings: ServingSettings) -> list[Slot]:
    slots: list[Slot] = []
    for name in settings.model_names:
        slots.append((name, settings.alias))
        policy = settings.policy(name)
        if policy.canary_percent or policy.shadow:
            slots.append((name, policy.challenger_alias))
    return slots


class AliasFollower:
    """Turns ``alias.set`` / ``alias.deleted`` into loads and unloads of served slots."""

    def __init__(self, models: ModelManager) -> None:
        self.models = models

    async def on_alias_set(self, event: CloudEvent[Any]) -> None:
        """Load the version the alias now names (in the background; the old one serves)."""
        moved: registry_events.AliasSet = event.data
        self.models.schedule(moved.name, moved.alias, int(moved.version))

    async def on_alias_deleted(self, event: CloudEvent[Any]) -> None:
        """A deleted challenger alias stops its traffic; a champion keeps serving."""
        deleted: registry_events.AliasDeleted = event.data
        slot = (deleted.name, deleted.alias)
        if slot in self.models.wanted and slot != self.models.wanted[0]:
            self.models.remove(*slot)
        elif slot in self.models.wanted:
            log.warning("alias %s@%s deleted; still serving what was loaded", *slot)


class _CatchUp:
    """Once the alias consumer has its partitions, reconcile once.

    It starts at the latest offset, so a move made between the start-up load and
    the group assignment would otherwise wait for the periodic reconcile.
    """

    def __init__(self, consumer: ConsumerRunner, models: ModelManager) -> None:
        self.consumer = consumer
        self.models = models
        self.following = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.consumer.wait_assigned(timeout=60)
            except TimeoutError:
                continue
            self.following = True
            await self.models.reconcile()
            return

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


class _Stopping:
    """Stops a publisher (which connects on first use) when the app stops."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        await self.publisher.stop()


def create_app(settings: ServingSettings) -> FastAPI:
    """Build the app; models load and the broker connects in its lifespan."""
    registry = RegistryClient(settings.registry_url, settings.data_dir / "models")
    # For requests that send entity keys: one pool for the app's life.
    features = FeaturesClient(settings.features_url, timeout=settings.features_timeout_seconds)
    models = ModelManager(
        registry, _slots(settings), reconcile_interval=settings.reconcile_interval_seconds
    )
    predictions = PredictionLog(
        lambda: Publisher(
            settings.kafka_bootstrap_servers,
            client_id="driftloop-serving-predictions",
            topics=[TOPICS["predictions"]],
            linger_ms=20,
            request_timeout_ms=5_000,
        ),
        settings.spill_path,
        max_buffer=settings.prediction_buffer,
    )
    follower = AliasFollower(models)
    dead_letters = Publisher(settings.kafka_bootstrap_servers, client_id="driftloop-serving")
    consumer = ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        # Every replica follows every alias move: one group per app instance (a restart
        # or a second app in one process never waits for an old member to time out).
        group_id=f"driftloop-serving-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        handlers={
            registry_events.AliasSet: [follower.on_alias_set],
            registry_events.AliasDeleted: [follower.on_alias_deleted],
        },
        publisher=dead_letters,
        topics=[TOPICS["registry.models"].name],
        auto_offset_reset="latest",  # the start-up load covers what came before
    )

    catch_up = _CatchUp(consumer, models)

    async def models_loaded() -> None:
        missing = [
            f"{name}@{settings.alias}"
            for name in settings.model_names
            if models.get(name, settings.alias) is None
        ]
        if missing:
            errors = "; ".join(f"{n}@{a}: {e}" for (n, a), e in models.errors.items())
            raise RuntimeError(
                f"not loaded: {', '.join(missing)}" + (f" ({errors})" if errors else "")
            )

    app = create_service_app(
        settings=settings,
        title="driftloop serving",
        description=(
            "Serves registered models by alias over KServe's V2 inference protocol "
            "(`/v2/models/{name}/infer`) and MLflow's scoring protocol (`/invocations`). "
            "Swaps versions without dropping requests when `alias.set` arrives; logs "
            "every prediction to the `predictions` topic."
        ),
        routers=ROUTERS,
        resources=[
            registry,
            features,
            predictions,
            models,
            _Stopping(dead_letters),
            consumer,
            catch_up,
        ],
        checks={"models": models_loaded},
        # Scoring skips FastAPI's routing and dependencies (the same handlers).
        fast_routes=FAST_ROUTES,
    )
    app.state.readiness.add_details(
        "models",
        lambda: {
            **{f"{n}@{a}": f"version {m.version}" for (n, a), m in models.served.items()},
            **{f"{n}@{a} load failure": e for (n, a), e in models.errors.items()},
            "alias events": "following" if catch_up.following else "joining",
        },
    )
    app.state.scorer = Scorer(settings, models, predictions, features)
    app.state.models = models
    app.state.predictions = predictions
    return app


SERVICE = ServiceDefinition(name="serving", settings_cls=ServingSettings, create_app=create_app)
