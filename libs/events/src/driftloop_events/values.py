"""Conversions between plain Python values and ``driftloop.common.v1`` Value / Record."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeAlias

from driftloop.common.v1.common_pb2 import Record, Value, ValueList

Scalar: TypeAlias = float | int | str | bool | bytes | datetime | None
PyValue: TypeAlias = Scalar | Sequence["PyValue"]


def make_value(obj: PyValue) -> Value:
    """Wrap a Python value in a ``Value``.

    ``bool`` becomes ``bool_value`` (not ``int64_value``), a timezone-aware ``datetime``
    becomes ``timestamp_value``, ``None`` becomes ``null_value`` and a list or tuple
    becomes ``list_value``.

    Raises:
        TypeError: The type has no Value kind (e.g. a dict), or a datetime is naive.
    """
    match obj:
        case None:
            value = Value(null_value="NULL_VALUE")
        # bool before int: bool is a subclass of int.
        case bool():
            value = Value(bool_value=obj)
        case int():
            value = Value(int64_value=obj)
        case float():
            value = Value(double_value=obj)
        case str():
            value = Value(string_value=obj)
        case bytes() | bytearray():
            value = Value(bytes_value=bytes(obj))
        case datetime() if obj.tzinfo is not None:
            value = Value(timestamp_value=obj)
        case datetime():
            raise TypeError(f"naive datetime {obj.isoformat()} has no time zone; use UTC")
        case list() | tuple():
            value = Value(list_value=ValueList(values=[make_value(item) for item in obj]))
        case _:
            raise TypeError(f"cannot convert {type(obj).__name__} to a driftloop Value")
    return value


def value_to_python(value: Value) -> PyValue:
    """Unwrap a ``Value``; an unset Value and ``null_value`` both give ``None``.

    Timestamps come back as timezone-aware UTC datetimes and lists as lists.
    """
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime(tzinfo=UTC)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    result: PyValue = getattr(value, kind)
    return result


def make_record(row: Mapping[str, PyValue]) -> Record:
    """Build a ``Record`` from a column name -> Python value mapping."""
    return Record(fields={name: make_value(obj) for name, obj in row.items()})


def record_to_dict(record: Record) -> dict[str, PyValue]:
    """Turn a ``Record`` back into a column name -> Python value dict."""
    return {name: value_to_python(value) for name, value in record.fields.items()}


def value_text(value: Value) -> str:
    """Render a Value as text for Kafka keys (see ``FeatureRow`` in the contract).

    string as is; int64 and double in decimal (an integral double like an integer, so
    ``1001.0`` gives ``"1001"``); bool as ``true``/``false``; bytes as lowercase hex;
    timestamp as RFC 3339 (the proto3 JSON form); null or unset as ``""``; a list as its
    items' texts joined by ``,``.
    """
    kind = value.WhichOneof("kind")
    match kind:
        case None | "null_value":
            text = ""
        case "bool_value":
            text = "true" if value.bool_value else "false"
        case "bytes_value":
            text = value.bytes_value.hex()
        case "timestamp_value":
            text = value.timestamp_value.ToJsonString()
        case "list_value":
            text = ",".join(value_text(item) for item in value.list_value.values)
        case "double_value":
            number = value.double_value
            # Integral doubles render like integers so 1001.0 and 1001 share a key.
            integral = math.isfinite(number) and number.is_integer()
            text = str(int(number)) if integral else repr(number)
        case _:
            text = str(getattr(value, kind))
    return text
