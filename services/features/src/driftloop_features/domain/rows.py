"""Feature rows from Kafka: validation against a push source's schema, batching, watermarks.

Pure logic: a :class:`PushSourceSchema` is read from the Feast registry by the adapter,
and a row is a :class:`~driftloop.features.v1.events_pb2.FeatureRow`. A row that does
not fit its push source is rejected with a reason (it goes to the DLQ); the other rows
of the batch are grouped per push source and push mode and written together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cached_property
from typing import Any, NamedTuple

from google.protobuf.timestamp_pb2 import Timestamp

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1 import events_pb2 as features

__all__ = [
    "Batch",
    "ColumnSpec",
    "Kind",
    "PushSourceSchema",
    "RowRejected",
    "ValidRow",
    "convert_value",
    "push_mode_name",
    "validate_row",
]


class Kind(Enum):
    """Scalar kinds of Feast value types, as far as row validation cares."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    BYTES = "bytes"
    TIMESTAMP = "timestamp"


# The Value kind read as it is for a scalar column of each kind (no conversion).
_DIRECT = {
    Kind.FLOAT: "double_value",
    Kind.INT: "int64_value",
    Kind.STRING: "string_value",
    Kind.BOOL: "bool_value",
    Kind.BYTES: "bytes_value",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a push source: its name, scalar kind, and whether it holds a list."""

    name: str
    kind: Kind
    is_list: bool = False
    #: The Value kind read as it is for this column (no conversion), e.g. ``double_value``.
    direct: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.is_list:
            object.__setattr__(self, "direct", _DIRECT.get(self.kind))

    def describe(self) -> str:
        """``int``, ``list of float`` ..."""
        return f"list of {self.kind.value}" if self.is_list else self.kind.value


@dataclass(frozen=True)
class PushSourceSchema:
    """What rows pushed to one push source must look like.

    Attributes:
        name: The push source.
        entity_columns: Join keys of the feature views it feeds (required, not null).
        feature_columns: Feature columns (optional; a missing one is stored as null).
        timestamp_field: Column of the batch source holding the event time.
        created_field: Column holding the created time, or None.
        feature_views: Feature views fed by the push source.
    """

    name: str
    entity_columns: tuple[ColumnSpec, ...]
    feature_columns: tuple[ColumnSpec, ...]
    timestamp_field: str
    created_field: str | None
    feature_views: tuple[str, ...]

    @cached_property
    def columns(self) -> dict[str, ColumnSpec]:
        """Entity and feature columns by name."""
        return {c.name: c for c in (*self.entity_columns, *self.feature_columns)}

    @cached_property
    def feature_reads(self) -> tuple[tuple[str, str | None, ColumnSpec], ...]:
        """(name, Value kind read as it is, spec) of each feature column, for validation."""
        return tuple((c.name, c.direct, c) for c in self.feature_columns)

    @cached_property
    def frame_columns(self) -> list[str]:
        """Every column of the frame pushed to Feast, in order."""
        names = [c.name for c in (*self.entity_columns, *self.feature_columns)]
        names.append(self.timestamp_field)
        if self.created_field:
            names.append(self.created_field)
        return names


class RowRejected(ValueError):
    """A row does not fit its push source; the message says why."""


class ValidRow(NamedTuple):
    """A row that passed validation, as plain Python values keyed by frame column.

    A named tuple: one is made per ingested row, and a frozen dataclass cost five times
    as much to build.
    """

    push_source: str
    mode: int
    values: dict[str, Any]
    event_time: datetime


def push_mode_name(mode: int) -> str:
    """The Feast push mode (``online``, ``offline``, ``online_and_offline``) of ``mode``."""
    if mode == features.PUSH_MODE_ONLINE:
        return "online"
    if mode == features.PUSH_MODE_OFFLINE:
        return "offline"
    # Unspecified means both, so that nothing is lost.
    return "online_and_offline"


def validate_row(
    row: features.FeatureRow,
    schemas: Mapping[str, PushSourceSchema],
    *,
    now: datetime | None = None,
) -> ValidRow:
    """Check ``row`` against its push source and convert its values.

    Raises:
        RowRejected: Unknown push source, missing or null entity column, unknown column,
            a value of the wrong type, or no event time.
    """
    if not row.push_source:
        raise RowRejected("push_source is empty")
    schema = schemas.get(row.push_source)
    if schema is None:
        known = ", ".join(sorted(schemas)) or "none"
        raise RowRejected(f"unknown push source {row.push_source!r} (known: {known})")
    if not row.HasField("event_time"):
        raise RowRejected("event_time is missing")
    event_time = _utc(row.event_time)
    given = row.values
    values: dict[str, Any] = {}
    found = 0
    for spec in schema.entity_columns:
        value = given.get(spec.name)
        kind = None if value is None else value.WhichOneof("kind")
        if value is None or kind is None or kind == "null_value":
            _check_unknown(schema, given)
            raise RowRejected(f"entity column {spec.name!r} is missing or null")
        found += 1
        values[spec.name] = (
            getattr(value, kind) if kind == spec.direct else _scalar_or_list(spec, kind, value)
        )
    for name, direct, spec in schema.feature_reads:
        value = given.get(name)
        if value is None:
            values[name] = None
            continue
        found += 1
        if direct is not None:
            # A value other than zero, false or empty can only be of the kind read (one
            # ``oneof``): one attribute read instead of ``WhichOneof`` and a read.
            read = getattr(value, direct)
            if read or value.HasField(direct):
                values[name] = read
                continue
        values[name] = convert_value(spec, value)
    if found != len(given):
        _check_unknown(schema, given)
    values[schema.timestamp_field] = event_time
    if schema.created_field:
        created = _utc(row.create_time) if row.HasField("create_time") else None
        values[schema.created_field] = created or now or datetime.now(UTC)
    # Unspecified means both stores, so that nothing is lost.
    mode = int(row.to) or features.PUSH_MODE_ONLINE_AND_OFFLINE
    return ValidRow(push_source=schema.name, mode=mode, values=values, event_time=event_time)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The range of a valid ``Timestamp`` (0001-01-01 to 9999-12-31), as protobuf checks it.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _utc(stamp: Timestamp) -> datetime:
    """``stamp.ToDatetime(tzinfo=UTC)``: the same datetime, a third cheaper per row.

    A timestamp out of protobuf's valid range goes through ``ToDatetime`` itself, which
    raises what it raises.
    """
    seconds, nanos = stamp.seconds, stamp.nanos
    if _MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    return stamp.ToDatetime(tzinfo=UTC)


def _check_unknown(schema: PushSourceSchema, given: Mapping[str, Value]) -> None:
    unknown = sorted(set(given) - set(schema.columns))
    if unknown:
        raise RowRejected(
            f"unknown column(s) {', '.join(map(repr, unknown))} for push source "
            f"{schema.name!r} (expected: {', '.join(schema.columns)})"
        )


def convert_value(spec: ColumnSpec, value: Value) -> Any:
    """The Python value of ``value`` for column ``spec``; None for null.

    Raises:
        RowRejected: The value's kind does not fit the column.
    """
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == spec.direct:
        return getattr(value, kind)
    return _scalar_or_list(spec, kind, value)


def _scalar_or_list(spec: ColumnSpec, kind: str, value: Value) -> Any:
    """:func:`convert_value` of a value whose kind is set and not read as it is."""
    if spec.is_list:
        if kind != "list_value":
            raise RowRejected(_wrong(spec, kind))
        item_spec = ColumnSpec(spec.name, spec.kind)
        return [convert_value(item_spec, item) for item in value.list_value.values]
    return _scalar(spec, kind, value)


def _scalar(spec: ColumnSpec, kind: str, value: Value) -> Any:  # noqa: PLR0911 - one per kind
    match spec.kind:
        case Kind.FLOAT if kind == "double_value":
            return value.double_value
        case Kind.FLOAT if kind == "int64_value":
            return float(value.int64_value)
        case Kind.INT if kind == "int64_value":
            return value.int64_value
        case Kind.INT if kind == "double_value":
            number = value.double_value
            if math.isfinite(number) and number.is_integer():
                return int(number)
        case Kind.STRING if kind == "string_value":
            return value.string_value
        case Kind.BOOL if kind == "bool_value":
            return value.bool_value
        case Kind.BYTES if kind == "bytes_value":
            return value.bytes_value
        case Kind.TIMESTAMP if kind == "timestamp_value":
            return value.timestamp_value.ToDatetime(tzinfo=UTC)
    raise RowRejected(_wrong(spec, kind))


def _wrong(spec: ColumnSpec, kind: str) -> str:
    got = kind.removesuffix("_value").replace("int64", "int").replace("double", "float")
    return f"column {spec.name!r} expects {spec.describe()}, got {got}"


@dataclass
class Batch:
    """Valid rows of one push source and push mode, to be written together."""

    push_source: str
    mode: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    min_event_time: datetime | None = None
    max_event_time: datetime | None = None

    def add(self, row: ValidRow) -> None:
        """Append ``row`` and move the watermarks."""
        self.rows.append(row.values)
        moment = row.event_time
        if self.min_event_time is None or moment < self.min_event_time:
            self.min_event_time = moment
        if self.max_event_time is None or moment > self.max_event_time:
            self.max_event_time = moment

    @staticmethod
    def group(rows: Iterable[ValidRow]) -> list[Batch]:
        """Group ``rows`` by push source and push mode, keeping their order in each group."""
        batches: dict[tuple[str, int], Batch] = {}
        for row in rows:
            slot = (row.push_source, row.mode)
            batch = batches.get(slot)
            if batch is None:
                batch = batches[slot] = Batch(row.push_source, row.mode)
            batch.add(row)
        return list(batches.values())
