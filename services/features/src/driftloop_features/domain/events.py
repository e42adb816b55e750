"""The events the features service publishes, built from what a use case did.

- ``features.ingested``: one watermark per push source that had rows written or
  rejected in a batch (:func:`ingested_events`).
- ``features.materialized``: one per feature view a materialization loaded
  (:func:`materialized_events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from driftloop.features.v1 import events_pb2 as features
from driftloop_events.envelope import CloudEvent
from driftloop_features.domain.rows import Batch, PushSourceSchema

__all__ = ["OFFLINE_MODES", "ONLINE_MODES", "ingested_events", "materialized_events"]

#: Push modes that write to the online store, and those that write to the offline store.
ONLINE_MODES = frozenset({features.PUSH_MODE_ONLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE})
OFFLINE_MODES = frozenset({features.PUSH_MODE_OFFLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE})


def ingested_events(
    written: Sequence[Batch],
    rejected: Mapping[str, int],
    schemas: Mapping[str, PushSourceSchema],
) -> list[CloudEvent[Any]]:
    """One ``features.ingested`` per push source that had rows written or rejected."""
    by_source: dict[str, list[Batch]] = {}
    for batch in written:
        by_source.setdefault(batch.push_source, []).append(batch)
    events: list[CloudEvent[Any]] = []
    for name in sorted({*by_source, *rejected}):
        batches = by_source.get(name, [])
        modes = {batch.mode for batch in batches}
        message = features.FeaturesIngested(
            push_source=name,
            feature_views=list(schemas[name].feature_views) if name in schemas else [],
            rows_written=sum(len(b.rows) for b in batches),
            rows_rejected=rejected.get(name, 0),
            online_store_written=bool(modes & ONLINE_MODES),
            offline_store_written=bool(modes & OFFLINE_MODES),
        )
        lows = [b.min_event_time for b in batches if b.min_event_time is not None]
        highs = [b.max_event_time for b in batches if b.max_event_time is not None]
        if lows:
            message.min_event_time.FromDatetime(min(lows))
        if highs:
            message.max_event_time.FromDatetime(max(highs))
        events.append(CloudEvent.new(message))
    return events


def materialized_events(
    done: Mapping[str, tuple[datetime | None, int]], end: datetime, run_id: str
) -> list[CloudEvent[Any]]:
    """One ``features.materialized`` per view of run ``run_id``: (start, rows) per view."""
    events: list[CloudEvent[Any]] = []
    for name, (start, rows) in done.items():
        message = features.FeaturesMaterialized(
            feature_view=name, materialization_id=run_id, rows=rows
        )
        if start is not None:
            message.start_time.FromDatetime(start)
        message.end_time.FromDatetime(end)
        events.append(CloudEvent.new(message))
    return events
