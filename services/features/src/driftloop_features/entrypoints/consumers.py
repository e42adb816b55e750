"""What the features service reacts to: rows on ``features.ingest``.

The bus ``Dispatcher`` decodes each record (an undecodable one goes to
``features.ingest.dlq``) and runs the handlers below; an ingestion engine
(``entrypoints/ingest.py``) writes the rows collected once per batch and commits the
offsets only after that, so a redelivered row is written again with the same value
(at least once, idempotent).
"""

from __future__ import annotations

from typing import Any

from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.consumer import HandlerTable
from driftloop_events.envelope import CloudEvent
from driftloop_features.service_layer.ingestion import RowBatch

__all__ = ["HANDLERS", "on_feature_row"]


async def on_feature_row(rows: RowBatch, event: CloudEvent[Any]) -> None:
    """A row pushed to ``features.ingest``: kept for the batch being read."""
    rows.add(event)


HANDLERS: HandlerTable[RowBatch] = {features.FeatureRow: [on_feature_row]}
