"""What the monitor reacts to: predictions, labels, alias moves and model documents.

Each handler is a plain function of the :class:`Monitor` (the use cases) and the event,
run by the bus ``Dispatcher`` of either stream engine (``entrypoints/stream.py``), which
decodes, retries, and dead-letters what cannot be handled. Redelivery is harmless: a
redelivered prediction does not wait for its label twice, and a version that has
reference data is not fetched again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop.trainer.v1 import events_pb2 as trainer_events
from driftloop_bus.consumer import HandlerTable
from driftloop_events.envelope import CloudEvent
from driftloop_kit.declarations import ModelDeclaration
from driftloop_monitor.domain.windows import VersionKey
from driftloop_monitor.service_layer.feature_ages import observe_feature_ages
from driftloop_monitor.service_layer.monitor import Monitor

__all__ = [
    "BATCHED",
    "HANDLERS",
    "on_alias_set",
    "on_label",
    "on_model_declared",
    "on_prediction",
    "on_predictions",
]


async def on_prediction(monitor: Monitor, event: CloudEvent[Any]) -> None:
    """A served prediction: rows into the version's window, a wait for its label, features' age.

    A keyed prediction's feature times give the age of the features it read.

    One handler for all (not three in the table): this runs for every record of the
    stream's busiest topic.
    """
    await monitor.windows.on_prediction(event)
    monitor.labels.remember(event)
    observe_feature_ages(event)


async def on_predictions(monitor: Monitor, events: list[CloudEvent[Any]]) -> list[int]:
    """A batch of served predictions (the durable engine's, one partition's): as
    :func:`on_prediction` for each, the rows of all of them first. Returns the indices of
    those it leaves to :func:`on_prediction` (malformed ones: it dead-letters them with
    why)."""
    left = await monitor.windows.on_predictions(events)
    skipped = set(left)
    remember = monitor.labels.remember
    for index, event in enumerate(events):
        if index not in skipped:
            remember(event)
            observe_feature_ages(event)
    return left


async def on_label(monitor: Monitor, event: CloudEvent[Any]) -> None:
    """Ground truth: joined with the predictions waiting for it."""
    await monitor.labels.on_label(event)


async def on_alias_set(monitor: Monitor, event: CloudEvent[Any]) -> None:
    """An alias moved: the replaced champion's open window closes now; the new champion
    gets its reference data."""
    moved: registry_events.AliasSet = event.data
    replaced = moved.alias == "champion" and moved.HasField("previous_version")
    if replaced and moved.previous_version != moved.version:
        await monitor.windows.version_replaced(VersionKey(moved.name, int(moved.previous_version)))
    await monitor.references.on_alias_set(event)


async def on_model_declared(monitor: Monitor, event: CloudEvent[Any]) -> None:
    """A model's document was applied: its ``monitor`` section is the model's policy.

    A document that does not validate is dead-lettered with why.
    """
    declared: trainer_events.ModelDeclared = event.data
    await monitor.policies.declare(ModelDeclaration.model_validate_json(declared.document_json))


HANDLERS: HandlerTable[Monitor] = {
    serving_events.PredictionLogged: [on_prediction],
    monitor_events.LabelRecorded: [on_label],
    registry_events.AliasSet: [on_alias_set],
    trainer_events.ModelDeclared: [on_model_declared],
}

BATCHED: dict[str, Callable[[Monitor, list[CloudEvent[Any]]], Awaitable[list[int]]]] = {
    "predictions": on_predictions,
}
"""Topics whose batches the durable engine hands to one handler at once (the busiest)."""
