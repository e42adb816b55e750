"""What the features service reacts to: rows on ``features.ingest``, labels on ``labels``.

The bus ``Dispatcher`` decodes each record (an undecodable one goes to
``features.ingest.dlq``) and runs the handlers below; an ingestion engine
(``entrypoints/ingest.py``) writes the rows collected once per batch and commits the
offsets only after that, so a redelivered row is written again with the same value
(at least once, idempotent).

Labels on ``labels`` (protobuf or JSON CloudEvents, from any producer, the service's
own ``POST /labels`` included) are stored in the label store by their own consumer
group; a label that cannot be stored goes to ``labels.dlq`` with the reason, and one
read again (a redelivery, or the service's own) is stored once. The same group reads
``predictions``, keeping what each one-row prediction was given, for the labels that
name only its request id.
"""

from __future__ import annotations

from typing import Any

from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.consumer import ConsumerRunner, HandlerTable, bind
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_features.domain.labels import label_of
from driftloop_features.service_layer.bootstrap import FeaturesContainer
from driftloop_features.service_layer.ingestion import RowBatch
from driftloop_features.service_layer.labels import Labels

__all__ = [
    "HANDLERS",
    "LABEL_HANDLERS",
    "label_consumer",
    "on_feature_row",
    "on_label",
    "on_prediction",
]


async def on_feature_row(rows: RowBatch, event: CloudEvent[Any]) -> None:
    """A row pushed to ``features.ingest``: kept for the batch being read."""
    rows.add(event)


HANDLERS: HandlerTable[RowBatch] = {features.FeatureRow: [on_feature_row]}


async def on_label(labels: Labels, event: CloudEvent[Any]) -> None:
    """A label on ``labels``: stored (a label that cannot be stored raises, with why)."""
    await labels.record([label_of(event.data)])


async def on_prediction(labels: Labels, event: CloudEvent[Any]) -> None:
    """A served prediction: its inputs kept, for a label that names only its request id."""
    await labels.record_prediction(event)


LABEL_HANDLERS: HandlerTable[Labels] = {
    monitor.LabelRecorded: [on_label],
    serving.PredictionLogged: [on_prediction],
}


def label_consumer(container: FeaturesContainer) -> ConsumerRunner:
    """The consumer of ``labels`` and ``predictions`` that stores every label in the label
    store, and what each one-row prediction was given."""
    settings = container.settings
    return ConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.labels_group,
        handlers=bind(LABEL_HANDLERS, container.labels),
        publisher=container.bus.publisher,
        topics=[TOPICS["labels"].name, TOPICS["predictions"].name],
    )
