"""Labels in and out of the label store.

A label posted over REST is stored and published on ``labels`` in one transaction
(the outbox), so the monitor sees the labels the store holds. When the service's own
consumer reads that record back, storing it again changes nothing (the store's rule
makes a resent label one label).

A label may name only the prediction's request id. For those, the same consumer keeps
what each one-row prediction on ``predictions`` was given (its inputs, as serving logged
them): a training set joins such a label with the features the model saw when it
answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import record_to_dict
from driftloop_features.adapters.label_store import LabelStore, TrainingLabels
from driftloop_features.domain.labels import Label, LabelRow, label_event
from driftloop_features.service_layer.ports import OutboxPort, SessionsPort

__all__ = ["LABELS_STORED", "SOURCE", "Labels"]

#: Labels written to the label store, from REST and from the ``labels`` topic (a resent
#: label counts again: it is written again, to the same row).
LABELS_STORED = Counter(
    "driftloop_features_labels_stored_total",
    "Labels written to the label store, by where they came from.",
    ["via"],
)

#: The CloudEvents source of labels the features service publishes.
SOURCE = "/driftloop/features"


class Labels:
    """The label store's use cases."""

    def __init__(self, *, database: SessionsPort, outbox: OutboxPort) -> None:
        self.database = database
        self.outbox = outbox
        self.store = LabelStore()

    async def submit(self, labels: Sequence[Label]) -> None:
        """Store ``labels`` and publish them on ``labels``, in one transaction."""
        events = [CloudEvent.new(label_event(label), source=SOURCE) for label in labels]
        async with self.database.session() as session:
            await self.store.record(session, [label.row() for label in labels])
            await self.outbox.add(session, *events)
        LABELS_STORED.labels("rest").inc(len(labels))

    async def record(self, labels: Sequence[LabelRow]) -> None:
        """Store labels read from the ``labels`` topic (they are published already)."""
        async with self.database.session() as session:
            await self.store.record(session, labels)
        LABELS_STORED.labels("topic").inc(len(labels))

    async def read(
        self,
        model_name: str,
        *,
        start: datetime | None,
        end: datetime | None,
        after_id: int,
        limit: int,
    ) -> list[tuple[int, Label]]:
        """One page of ``model_name``'s labels (see :meth:`LabelStore.read`)."""
        async with self.database.session() as session:
            return await self.store.read(
                session, model_name, start=start, end=end, after_id=after_id, limit=limit
            )

    async def training_labels(
        self, model_name: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> TrainingLabels:
        """At most ``limit`` of ``model_name``'s labels in the range, as a training set's
        columns (see :meth:`LabelStore.training_labels`)."""
        async with self.database.session() as session:
            return await self.store.training_labels(
                session, model_name, start=start, end=end, limit=limit
            )

    async def record_prediction(self, event: CloudEvent[Any]) -> bool:
        """Keep what a one-row prediction was given; False for a request of several rows
        (a label by request id cannot say which row it is about)."""
        return bool(await self.record_predictions([event]))

    async def record_predictions(self, events: Sequence[CloudEvent[Any]]) -> int:
        """Keep what each one-row prediction of ``events`` was given, in one transaction;
        how many were kept."""
        kept = [_inputs(event) for event in events]
        rows = [row for row in kept if row is not None]
        if rows:
            async with self.database.session() as session:
                await self.store.record_inputs(session, rows)
        return len(rows)

    async def inputs_of(
        self, model_name: str, request_ids: Sequence[str]
    ) -> dict[str, tuple[datetime, dict[str, Any]]]:
        """What these predictions of ``model_name`` were given (request id -> (time,
        inputs)); the ones never seen are absent."""
        async with self.database.session() as session:
            return await self.store.inputs_of(session, model_name, request_ids)


def _inputs(event: CloudEvent[Any]) -> dict[str, Any] | None:
    logged: serving.PredictionLogged = event.data
    if len(logged.inputs) != 1 or not logged.request_id or len(logged.request_id) > 255:
        return None
    when = (
        logged.request_time.ToDatetime(tzinfo=UTC)
        if logged.HasField("request_time")
        else event.time
    )
    return {
        "request_id": logged.request_id,
        "model_name": logged.model.name,
        "request_time": when,
        "inputs": dict(record_to_dict(logged.inputs[0])),
    }
