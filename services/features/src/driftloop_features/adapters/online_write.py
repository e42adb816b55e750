"""A speed shortcut past ``FeatureStore.push(..., to=ONLINE)``: rows straight to protobufs.

Feast's push turns a DataFrame into Arrow, then Arrow into its online-store protobufs
(``EntityKey`` and ``Value``), one column at a time, and writes every row. Ingestion
already holds validated plain values, so :class:`OnlinePlan` builds the protobufs from
them directly and keeps only the latest row of each entity of a batch (the online store
keeps one value per entity); the provider's ``online_write_batch`` then writes them, as
push would. Views with a column type this does not convert go through push.

Checked against Feast 0.67.0 (the protobuf fields of ``Value``, the row tuple that
``online_write_batch`` takes); ``tests/unit/features/test_features_feast_pins.py`` pins
that version and compares the protobufs with Feast's own conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feast import FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

__all__ = ["OnlinePlan", "OnlineRow"]

#: One row as ``online_write_batch`` takes it: entity key, values, event and created time.
OnlineRow = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]

_PROTO_FIELDS = {
    "DOUBLE": "double_val",
    "FLOAT": "float_val",
    "INT64": "int64_val",
    "INT32": "int32_val",
    "STRING": "string_val",
    "BOOL": "bool_val",
    "BYTES": "bytes_val",
}


@dataclass(frozen=True)
class OnlinePlan:
    """How rows of one feature view become Feast's online-store protobufs."""

    join_keys: list[tuple[str, str]]
    features: list[tuple[str, str]]
    timestamp_field: str
    created_field: str | None

    @classmethod
    def of(cls, view: FeatureView) -> OnlinePlan | None:
        """The plan of ``view``, or None when a column has a type it does not convert."""
        join_keys = [(c.name, c.dtype.to_value_type().name) for c in view.entity_columns]
        features = [(f.name, f.dtype.to_value_type().name) for f in view.features]
        if any(t not in _PROTO_FIELDS for _, t in (*join_keys, *features)):
            return None
        batch = view.batch_source
        assert batch is not None
        return cls(
            join_keys=[(name, _PROTO_FIELDS[t]) for name, t in join_keys],
            features=[(name, _PROTO_FIELDS[t]) for name, t in features],
            timestamp_field=batch.timestamp_field,
            created_field=batch.created_timestamp_column or None,
        )

    def protos(self, rows: Sequence[Mapping[str, Any]]) -> list[OnlineRow]:
        """The latest row of each entity as (entity key, values, event time, created time)."""
        latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        stamp = self.timestamp_field
        for row in rows:
            key = tuple(row[name] for name, _ in self.join_keys)
            seen = latest.get(key)
            if seen is None or row[stamp] >= seen[stamp]:  # a tie: the later row wins
                latest[key] = row
        names = [name for name, _ in self.join_keys]
        data = []
        for row in latest.values():
            entity_key = EntityKeyProto(
                join_keys=names,
                entity_values=[ValueProto(**{f: row[name]}) for name, f in self.join_keys],
            )
            values = {
                name: ValueProto() if row[name] is None else ValueProto(**{f: row[name]})
                for name, f in self.features
            }
            created = row.get(self.created_field) if self.created_field else None
            data.append((entity_key, values, row[stamp], created))
        return data
