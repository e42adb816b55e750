"""Hypothesis strategies and checks built from protobuf descriptors, generically.

Nothing here names a driftloop field: a field added to the contract is generated and
checked automatically.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

F = FieldDescriptor

_INT_RANGES: dict[int, tuple[int, int]] = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}

# The range proto3 JSON can write for google.protobuf.Timestamp (years 0001..9999).
_TS_MIN_SECONDS = -62_135_596_800
_TS_MAX_SECONDS = 253_402_300_799


def is_map(field: FieldDescriptor) -> bool:
    """True for a ``map<K, V>`` field (a repeated synthetic MapEntry message)."""
    return (
        field.type == F.TYPE_MESSAGE
        and field.message_type is not None
        and bool(field.message_type.GetOptions().map_entry)
    )


def real_oneof(field: FieldDescriptor) -> OneofDescriptor | None:
    """The field's oneof, unless it is the synthetic oneof of a proto3 ``optional``."""
    oneof = field.containing_oneof
    if oneof is None or (len(oneof.fields) == 1 and oneof.name == f"_{field.name}"):
        return None
    return oneof


def _timestamps() -> st.SearchStrategy[Timestamp]:
    return st.builds(
        Timestamp,
        seconds=st.integers(_TS_MIN_SECONDS, _TS_MAX_SECONDS),
        nanos=st.integers(0, 999_999_999),
    )


_SIMPLE: dict[int, st.SearchStrategy[Any]] = {
    # NaN never equals itself, so a NaN payload could not be compared after a trip.
    F.TYPE_DOUBLE: st.floats(allow_nan=False),
    F.TYPE_FLOAT: st.floats(allow_nan=False, width=32),
    F.TYPE_BOOL: st.booleans(),
    F.TYPE_STRING: st.text(),
    F.TYPE_BYTES: st.binary(),
}


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message (or map) field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.integers(low, high)
    if kind == F.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([value.number for value in field.enum_type.values])
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    raise NotImplementedError(f"no strategy for field {field.full_name} of type {kind}")


def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == F.TYPE_MESSAGE:
        return messages(message_type(field), depth=depth + 1)
    return _scalar(field)


def _can_generate(field: FieldDescriptor, depth: int, max_depth: int) -> bool:
    # Past max_depth recursive types (Value -> ValueList -> Value) stop at scalars.
    return field.type != F.TYPE_MESSAGE or is_map(field) or depth < max_depth


def _field(field: FieldDescriptor, depth: int, max_depth: int) -> st.SearchStrategy[Any]:
    if is_map(field):
        entry = message_type(field)
        key = _scalar(entry.fields_by_name["key"])
        value_field = entry.fields_by_name["value"]
        if value_field.type == F.TYPE_MESSAGE and depth >= max_depth:
            return st.just({})
        return st.dictionaries(key, _single(value_field, depth), max_size=3)
    if field.is_repeated:
        return st.lists(_single(field, depth), max_size=3)
    return _single(field, depth)


def messages(
    descriptor: Descriptor, *, depth: int = 0, max_depth: int = 3
) -> st.SearchStrategy[Any]:
    """Build a strategy of messages of ``descriptor``, any field set or not.

    Every plain field is drawn (defaults included), fields with presence may be left
    unset, and each real oneof gets at most one member.
    """
    if descriptor.full_name == Timestamp.DESCRIPTOR.full_name:
        return _timestamps()
    cls = _message_class(descriptor)
    plain: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    oneofs: dict[str, list[FieldDescriptor]] = {}
    for field in descriptor.fields:
        if not _can_generate(field, depth, max_depth):
            continue
        oneof = real_oneof(field)
        if oneof is not None:
            oneofs.setdefault(oneof.name, []).append(field)
        elif field.has_presence:
            optional[field.name] = _field(field, depth, max_depth)
        else:
            plain[field.name] = _field(field, depth, max_depth)
    parts: list[st.SearchStrategy[dict[str, Any]]] = [
        st.fixed_dictionaries(plain, optional=optional)
    ]
    for members in oneofs.values():
        choices: list[st.SearchStrategy[dict[str, Any]]] = [st.just({})]
        choices += [
            _field(member, depth, max_depth).map(partial(_as_kwarg, member.name))
            for member in members
        ]
        parts.append(st.one_of(choices))
    return st.tuples(*parts).map(lambda dicts: cls(**{k: v for d in dicts for k, v in d.items()}))


def _as_kwarg(name: str, value: Any) -> dict[str, Any]:
    return {name: value}


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def datetimes_any_offset() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes with arbitrary fixed UTC offsets (whole minutes)."""
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )
    return st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
    ).map(lambda moment: moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def unset_fields(items: list[Message], descriptor: Descriptor, prefix: str = "") -> list[str]:
    """List the fields of ``descriptor`` that no message in ``items`` sets, recursively.

    A field counts as set when any of ``items`` sets it, so a list of columns where one
    drifted and another did not is still fully populated. A real oneof counts as set
    when any member is set (only one can be), and the members that are set are checked
    in turn. Scalars must differ from their default; fields with presence must be present;
    lists and maps must be non-empty.
    """
    missing: list[str] = []
    done: set[str] = set()
    for field in descriptor.fields:
        oneof = real_oneof(field)
        if oneof is not None:
            if oneof.name in done:
                continue
            done.add(oneof.name)
            if not any(item.WhichOneof(oneof.name) for item in items):
                missing.append(f"{prefix}{oneof.name} (a oneof with no member set)")
            for member in oneof.fields:
                holders = [
                    getattr(item, member.name)
                    for item in items
                    if item.WhichOneof(oneof.name) == member.name
                ]
                if holders and member.type == F.TYPE_MESSAGE:
                    missing += _nested(holders, message_type(member), f"{prefix}{member.name}.")
            continue
        values = _values(items, field)
        if not values:
            missing.append(f"{prefix}{field.name}")
            continue
        element_type = _element_message_type(field)
        if element_type is not None:
            missing += _nested(values, element_type, f"{prefix}{field.name}.")
    return missing


def _element_message_type(field: FieldDescriptor) -> Descriptor | None:
    if is_map(field):
        value_field = message_type(field).fields_by_name["value"]
        return value_field.message_type if value_field.type == F.TYPE_MESSAGE else None
    return field.message_type if field.type == F.TYPE_MESSAGE else None


def _nested(values: list[Any], descriptor: Descriptor, prefix: str) -> list[str]:
    if descriptor.full_name == Timestamp.DESCRIPTOR.full_name:
        return []  # a present Timestamp is populated, even at the epoch
    return unset_fields(values, descriptor, prefix)


def _values(items: list[Message], field: FieldDescriptor) -> list[Any]:
    """The populated values of ``field`` across ``items`` (map values, list elements...)."""
    found: list[Any] = []
    for item in items:
        value = getattr(item, field.name)
        if is_map(field):
            found += list(value.values())
        elif field.is_repeated:
            found += list(value)
        elif field.has_presence:
            if item.HasField(field.name):
                found.append(value)
        elif value != field.default_value:
            found.append(value)
    return found
