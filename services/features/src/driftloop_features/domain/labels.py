"""Labels: the ground truth of predictions, as the label store keeps them.

A label is keyed by its model and either the prediction's request id or, without one,
the entity keys it is about (as canonical JSON). One key holds one label:

- a redelivered or resent label is the same label (stored once);
- a corrected label replaces the stored one when its event time is later, or equal
  (then the later received wins); a label with an *earlier* event time than the stored
  one is ignored, so a late redelivery of a superseded label cannot undo a correction.

The store writes a :class:`LabelRow`: the label with its key, its event time in UTC.
A record of the ``labels`` topic becomes one through :func:`row_of`, which checks what
:func:`label_of` and :class:`Label` check without building either (the label
consumer's per-record cost; bench/README.md has the figures).

Pure logic; the adapter (``adapters/label_store.py``) applies the rule in one upsert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_events.values import make_value
from driftloop_kit.errors import InvalidInput

__all__ = [
    "MAX_KEY_CHARS",
    "Label",
    "LabelRejected",
    "LabelRow",
    "Scalar",
    "canonical_json",
    "label_event",
    "label_key",
    "label_of",
    "row_of",
]

Scalar = str | int | float | bool | None
MAX_KEY_CHARS = 1024
MAX_NAME_CHARS = 255

# json.dumps(..., sort_keys=True, separators=(",", ":")) builds an encoder per call;
# one kept encoder gives the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_quoted = json.encoder.encode_basestring_ascii  # how json.dumps writes a string


class LabelRejected(InvalidInput, ValueError):
    """A label that cannot be stored, with the reason (a 4xx, or the DLQ at once: a
    consumer does not try a wrong label again)."""


def _beyond_int64(value: object) -> bool:
    # Events carry integers as 64-bit values (protobuf), as Feast's entity keys do.
    return isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63


@dataclass(frozen=True, slots=True)
class Label:
    """One label as stored: ``event_time`` is timezone-aware."""

    model_name: str
    ground_truth: Scalar
    event_time: datetime
    request_id: str | None = None
    entity_keys: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_identity(self.model_name, self.request_id, self.entity_keys)
        if self.event_time.tzinfo is None:
            raise LabelRejected("event_time has no time zone")
        _check_truth(self.ground_truth)
        for name, value in self.entity_keys.items():
            if not isinstance(value, str | int | float | bool) or isinstance(value, float):
                raise LabelRejected(f"entity key {name!r} is not a string, integer or bool")
            if _beyond_int64(value):
                raise LabelRejected(f"entity key {name!r} is an integer beyond 64 bits")
        _check_key(self.key)

    @property
    def key(self) -> str:
        """What identifies the label within its model: request id, else the entity keys."""
        return label_key(self.request_id, self.entity_keys)

    def row(self) -> LabelRow:
        """The label as the store writes it (its event time in UTC)."""
        moment = self.event_time
        return LabelRow(
            model_name=self.model_name,
            label_key=self.key,
            request_id=self.request_id,
            entity_keys=dict(self.entity_keys),
            ground_truth=self.ground_truth,
            event_time=moment if moment.tzinfo is UTC else moment.astimezone(UTC),
        )


class LabelRow(NamedTuple):
    """A label as the store writes it: checked, keyed, ``event_time`` in UTC."""

    model_name: str
    label_key: str
    request_id: str | None
    entity_keys: dict[str, Scalar]
    ground_truth: Scalar
    event_time: datetime


def label_key(request_id: str | None, entity_keys: Mapping[str, Scalar]) -> str:
    """What identifies a label within its model: the request id, else the entity keys
    as canonical JSON (:func:`canonical_json`)."""
    if request_id:
        return f"request:{request_id}"
    return f"entities:{canonical_json(entity_keys)}"


def canonical_json(keys: Mapping[str, Scalar]) -> str:
    """``json.dumps(keys, sort_keys=True, separators=(",", ":"))``.

    Entity keys are strings, integers and bools; those are written here directly (about
    a third of what ``json.dumps`` costs for them), anything else by the encoder.
    """
    parts = []
    for name in sorted(keys):
        value = keys[name]
        if value is True:
            text = "true"
        elif value is False:
            text = "false"
        elif type(value) is int:
            text = int.__repr__(value)
        elif type(value) is str:
            text = _quoted(value)
        else:
            return _CANONICAL.encode(dict(keys))
        parts.append(f"{_quoted(name)}:{text}")
    return "{" + ",".join(parts) + "}"


def _check_identity(
    model_name: str, request_id: str | None, entity_keys: Mapping[str, Scalar]
) -> None:
    if not model_name.strip():
        raise LabelRejected("model_name is empty")
    if len(model_name) > MAX_NAME_CHARS:
        raise LabelRejected(f"model_name is longer than {MAX_NAME_CHARS} characters")
    if not request_id and not entity_keys:
        raise LabelRejected("a label needs a request_id or entity_keys")
    if request_id is not None and len(request_id) > MAX_NAME_CHARS:
        raise LabelRejected(f"request_id is longer than {MAX_NAME_CHARS} characters")


def _check_truth(truth: Scalar) -> None:
    if isinstance(truth, float) and not math.isfinite(truth):
        raise LabelRejected("ground_truth is not a finite number")
    if _beyond_int64(truth):
        raise LabelRejected("ground_truth is an integer beyond 64 bits")


def _check_key(key: str) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise LabelRejected(f"the label's key is longer than {MAX_KEY_CHARS} characters")


def label_event(label: Label) -> monitor.LabelRecorded:
    """The ``labels`` topic's message for ``label`` (what the monitor consumes)."""
    message = monitor.LabelRecorded(
        request_id=label.request_id or "",
        model_name=label.model_name,
        ground_truth=make_value(label.ground_truth),
    )
    message.event_time.FromDatetime(label.event_time)
    for name, value in label.entity_keys.items():
        message.entity_keys[name].CopyFrom(make_value(value))
    return message


def label_of(message: monitor.LabelRecorded) -> Label:
    """The label a ``labels`` record carries; :class:`LabelRejected` says why not."""
    row = row_of(message)
    return Label(
        model_name=row.model_name,
        ground_truth=row.ground_truth,
        event_time=row.event_time,
        request_id=row.request_id,
        entity_keys=row.entity_keys,
    )


# The ``Value`` kinds a ground truth and an entity key may have.
_TRUTH_KINDS = frozenset({"string_value", "int64_value", "double_value", "bool_value"})
_KEY_KINDS = frozenset({"string_value", "int64_value", "bool_value"})
_NULL_KINDS = frozenset({None, "null_value"})
# protobuf's Timestamp range (years 1 to 9999), as Timestamp.ToDatetime checks it.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def row_of(message: monitor.LabelRecorded) -> LabelRow:
    """The row of the label a ``labels`` record carries, checked as :func:`label_of` and
    :class:`Label` check it (same reasons, same order); :class:`LabelRejected` says why
    not. Integers of a protobuf message fit 64 bits, so that check has nothing to do."""
    if not message.HasField("event_time"):
        raise LabelRejected("event_time is missing")
    if not message.HasField("ground_truth"):
        raise LabelRejected("ground_truth is missing")
    value = message.ground_truth
    kind = value.WhichOneof("kind")
    truth: Scalar
    if kind in _TRUTH_KINDS:
        truth = getattr(value, kind)
    elif kind in _NULL_KINDS:
        truth = None
    else:
        raise LabelRejected("ground_truth is not a string, number, bool or null")
    keys: dict[str, Scalar] = {}
    for name, value in message.entity_keys.items():
        kind = value.WhichOneof("kind")
        if kind not in _KEY_KINDS:
            raise LabelRejected(f"entity key {name!r} is not a string, integer or bool")
        keys[name] = getattr(value, kind)
    stamp = message.event_time
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        raise LabelRejected("event_time is out of range (years 1 to 9999)")
    model_name = message.model_name
    request_id = message.request_id or None
    _check_identity(model_name, request_id, keys)
    _check_truth(truth)
    key = label_key(request_id, keys)
    _check_key(key)
    return LabelRow(
        model_name=model_name,
        label_key=key,
        request_id=request_id,
        entity_keys=keys,
        ground_truth=truth,
        # Timestamp.ToDatetime(tzinfo=UTC), without its checks made twice.
        event_time=_EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000),
    )
