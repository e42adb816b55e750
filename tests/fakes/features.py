"""Fakes of the features service's ports (``driftloop_features.service_layer.ports``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from driftloop_bus.deadletter import DeadLetters
from driftloop_features.domain.rows import ColumnSpec, Kind, PushSourceSchema
from tests.fakes.common import FakeDeadLetters


def push_schema(name: str) -> PushSourceSchema:
    """A push source ``name`` of ``flower_id`` (int) and ``sepal_length`` (float)."""
    return PushSourceSchema(
        name=name,
        entity_columns=(ColumnSpec("flower_id", Kind.INT),),
        feature_columns=(ColumnSpec("sepal_length", Kind.FLOAT),),
        timestamp_field="event_timestamp",
        created_field=None,
        feature_views=(f"{name}_view",),
    )


class FakeGateway:
    """A Feast store (a ``FeatureStorePort``) that records pushes.

    Pushes to a source named in ``failing`` raise; every source has :func:`push_schema`.
    """

    def __init__(self, *sources: str, failing: tuple[str, ...] = ()) -> None:
        self.push_schemas: Mapping[str, PushSourceSchema] = {
            name: push_schema(name) for name in sources
        }
        self.failing = failing
        self.pushed: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.refreshes = 0
        self.materialized: list[tuple[datetime | None, datetime, list[str] | None]] = []

    def push(self, push_source_name: str, df: pd.DataFrame, to: str) -> None:
        if push_source_name in self.failing:
            raise ConnectionError("offline store is down")
        self.pushed.append((push_source_name, to, df.to_dict("records")))

    def write_online_rows(self, push_source_name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if push_source_name in self.failing:
            raise ConnectionError("online store is down")
        self.pushed.append((push_source_name, "online", [dict(row) for row in rows]))
        return len(rows)

    def refresh(self) -> None:
        self.refreshes += 1

    def materializable(self, feature_views: list[str] | None) -> list[str]:
        views = sorted(view for s in self.push_schemas.values() for view in s.feature_views)
        return views if feature_views is None else [v for v in views if v in feature_views]

    def materialize(
        self, start: datetime, end: datetime, feature_views: list[str] | None
    ) -> dict[str, int]:
        self.materialized.append((start, end, feature_views))
        return dict.fromkeys(self.materializable(feature_views), 0)

    def materialize_incremental(
        self, end: datetime, feature_views: list[str] | None
    ) -> dict[str, tuple[datetime | None, int]]:
        self.materialized.append((None, end, feature_views))
        return dict.fromkeys(self.materializable(feature_views), (None, 0))


class FakeDispatcherDeadLetters(FakeDeadLetters, DeadLetters):
    """:class:`FakeDeadLetters` where the bus ``Dispatcher`` wants its ``DeadLetters``.

    The Dispatcher is typed with the real class (and reads its ``group``); ingestion
    and the Dispatcher share one dead-letter sender, as in the service.
    """

    def __init__(self, group: str = "features-test") -> None:
        FakeDeadLetters.__init__(self)
        self.group = group
