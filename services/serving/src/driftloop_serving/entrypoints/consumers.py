"""What the serving service reacts to: alias moves on ``registry.models``, model
documents on ``trainer.models``.

Every replica follows every alias move, so each app instance has its own consumer
group, starting at the latest offset (the start-up load covers what came before).
Every replica also reads every model document, from the start of the compacted
``trainer.models`` (the latest revision of each model is there): a declared model is
added, its traffic policy and feature source changed, or it stops being served.
An ``alias.set`` loads the version the alias now names in the background (the old
one serves until it loaded); an ``alias.deleted`` stops a challenger's traffic (a
champion keeps serving). A missed event is caught by the periodic reconcile.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any

from driftloop.registry.v1 import events_pb2 as registry
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_bus.consumer import ConsumerRunner, HandlerTable, bind
from driftloop_bus.tasks import cancel_and_wait
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_kit.declarations import ModelDeclaration
from driftloop_serving.service_layer.bootstrap import ServingContainer
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.models import ModelManager

__all__ = [
    "DECLARATION_HANDLERS",
    "HANDLERS",
    "CatchUp",
    "alias_consumer",
    "declarations_consumer",
    "on_alias_deleted",
    "on_alias_set",
    "on_model_declared",
]


async def on_alias_set(models: ModelManager, event: CloudEvent[Any]) -> None:
    """An alias moved: load the version it names (in the background; the old one serves)."""
    moved: registry.AliasSet = event.data
    models.alias_set(moved.name, moved.alias, int(moved.version))


async def on_alias_deleted(models: ModelManager, event: CloudEvent[Any]) -> None:
    """An alias was deleted: a challenger stops its traffic; a champion keeps serving."""
    deleted: registry.AliasDeleted = event.data
    models.alias_deleted(deleted.name, deleted.alias)


HANDLERS: HandlerTable[ModelManager] = {
    registry.AliasSet: [on_alias_set],
    registry.AliasDeleted: [on_alias_deleted],
}


async def on_model_declared(catalog: Catalog, event: CloudEvent[Any]) -> None:
    """A model's document was applied: serve it as its ``serving`` section says.

    A document that does not validate raises, so the record is dead-lettered with why.
    """
    declared: trainer.ModelDeclared = event.data
    declaration = ModelDeclaration.model_validate_json(declared.document_json)
    catalog.declare(declaration, int(declared.revision))


#: The handlers of ``trainer.models`` (bound to the catalog, not the loaded models).
DECLARATION_HANDLERS: HandlerTable[Catalog] = {trainer.ModelDeclared: [on_model_declared]}


def _instance_group(purpose: str) -> str:
    # One group per app instance: every replica reads every record, and a restart or a
    # second app in one process never waits for an old member to time out.
    return f"driftloop-serving-{purpose}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def declarations_consumer(container: ServingContainer) -> ConsumerRunner:
    """The consumer of ``trainer.models``: every model document, from the beginning."""
    settings = container.settings
    return ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=_instance_group("models-"),
        handlers=bind(DECLARATION_HANDLERS, container.catalog),
        publisher=container.dead_letters,
        topics=[TOPICS["trainer.models"].name],
        auto_offset_reset="earliest",  # compacted: the latest document of every model
    )


def alias_consumer(container: ServingContainer) -> ConsumerRunner:
    """The consumer of ``registry.models`` that runs :data:`HANDLERS` on the served models."""
    settings = container.settings
    return ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=_instance_group(""),
        handlers=bind(HANDLERS, container.models),
        publisher=container.dead_letters,
        topics=[TOPICS["registry.models"].name],
        auto_offset_reset="latest",  # the start-up load covers what came before
    )


class CatchUp:
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
