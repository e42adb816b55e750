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

import logging
from typing import Any

from google.protobuf.message import DecodeError

from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.consumer import ConsumerRunner, HandlerTable, bind, delivered
from driftloop_bus.deadletter import Delivered
from driftloop_events.catalog import spec_for
from driftloop_events.envelope import CloudEvent, protobuf_spec
from driftloop_events.topics import TOPICS
from driftloop_features.domain.labels import LabelRejected, LabelRow, row_of
from driftloop_features.service_layer.bootstrap import FeaturesContainer
from driftloop_features.service_layer.ingestion import RowBatch
from driftloop_features.service_layer.labels import Labels

log = logging.getLogger(__name__)

__all__ = [
    "HANDLERS",
    "LABEL_HANDLERS",
    "LabelConsumer",
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
    await labels.record([row_of(event.data)])


async def on_prediction(labels: Labels, event: CloudEvent[Any]) -> None:
    """A served prediction: its inputs kept, for a label that names only its request id."""
    await labels.record_prediction(event)


LABEL_HANDLERS: HandlerTable[Labels] = {
    monitor.LabelRecorded: [on_label],
    serving.PredictionLogged: [on_prediction],
}


#: The longest the broker holds a fetch of the label consumer (aiokafka's default: 500).
FETCH_MAX_WAIT_MS = 100

#: What the broker waits for (up to :data:`FETCH_MAX_WAIT_MS`) before it answers a fetch
#: of the label consumer. Each answered fetch is one transaction in the label store and
#: one offset commit; answered at its first record (aiokafka's default, 1 byte), a fetch
#: held the few predictions serving's producer sends per 20 ms linger, and that cost the
#: service ~0.5 ms of CPU per prediction beside its online reads, on the core that
#: answers them (bench/README.md, "keyed"). Labels and predictions wait 100 ms at most.
FETCH_MIN_BYTES = 64 * 1024

_LABEL_SPEC = spec_for(monitor.LabelRecorded)
_LABEL_FROM_BYTES = monitor.LabelRecorded.FromString


class LabelConsumer(ConsumerRunner):
    """Stores each polled batch of ``labels`` and ``predictions`` in one transaction.

    The records of a batch are decoded (an undecodable one is dead-lettered); the labels
    are stored together, and what the one-row predictions were given likewise. A
    protobuf label whose CloudEvents headers the envelope accepts as they are
    (:func:`~driftloop_events.envelope.protobuf_spec`) skips the rest of the envelope:
    its payload is parsed and checked straight into the row the store writes
    (:func:`~driftloop_features.domain.labels.row_of`); any other record is decoded
    by the bus ``Dispatcher``. When a
    batch cannot be stored as a whole (a label the store refuses), its records go one by
    one through the bus ``Dispatcher`` and :data:`LABEL_HANDLERS`, which retry and
    dead-letter the one at fault with why. Offsets are committed after the batch.
    """

    def __init__(self, container: FeaturesContainer, *, batch_size: int = 2000) -> None:
        settings = container.settings
        super().__init__(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.labels_group,
            handlers=bind(LABEL_HANDLERS, container.labels),
            publisher=container.bus.publisher,
            topics=[TOPICS["labels"].name, TOPICS["predictions"].name],
            max_poll_records=batch_size,
            # aiokafka keeps one fetch in flight per broker, for the partitions whose
            # records are all handed out; when those are at their end the broker holds
            # it for this long while the others drain, and a backlog is read in pauses.
            consumer_options={
                "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
                "fetch_min_bytes": FETCH_MIN_BYTES,
            },
        )
        self.labels = container.labels
        self.batch_size = batch_size

    async def store(self, records: list[Delivered]) -> None:
        """Store one batch (see the class docstring)."""
        labels: list[tuple[Delivered, LabelRow]] = []
        predictions: list[tuple[Delivered, CloudEvent[Any]]] = []
        one_by_one: list[Delivered] = []
        for record in records:
            value = record.value
            if value is not None and protobuf_spec(record.headers) is _LABEL_SPEC:
                # The envelope's checks passed: the payload alone is left to decode.
                try:
                    labels.append((record, row_of(_LABEL_FROM_BYTES(value))))
                except (DecodeError, LabelRejected):
                    one_by_one.append(record)  # dead-lettered by the dispatcher, with why
                continue
            event = await self.dispatcher.decode(record)
            if event is None:
                continue  # dead-lettered
            if isinstance(event.data, monitor.LabelRecorded):
                try:
                    labels.append((record, row_of(event.data)))
                except LabelRejected:
                    one_by_one.append(record)  # dead-lettered by its handler, with why
            elif isinstance(event.data, serving.PredictionLogged):
                predictions.append((record, event))
        try:
            await self.labels.record([label for _, label in labels])
        except Exception:
            log.warning("a batch of labels could not be stored whole; one at a time")
            one_by_one.extend(record for record, _ in labels)
        try:
            await self.labels.record_predictions([event for _, event in predictions])
        except Exception:
            log.warning("a batch of predictions could not be kept whole; one at a time")
            one_by_one.extend(record for record, _ in predictions)
        for record in one_by_one:
            await self.dispatcher.handle(record)

    async def _run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("consumer is not connected")
        while True:
            polled = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
            if consumer.assignment():
                self._assigned.set()
            if not polled:
                continue
            await self.store([delivered(r) for records in polled.values() for r in records])
            for tp, records in polled.items():
                self._pending[tp] = records[-1].offset + 1
            await self._commit(consumer)


def label_consumer(container: FeaturesContainer) -> ConsumerRunner:
    """The consumer of ``labels`` and ``predictions`` that stores every label in the label
    store, and what each one-row prediction was given, a batch at a time."""
    return LabelConsumer(container)
