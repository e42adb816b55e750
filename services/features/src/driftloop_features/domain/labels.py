"""Labels: the ground truth of predictions, as the label store keeps them.

A label is keyed by its model and either the prediction's request id or, without one,
the entity keys it is about (as canonical JSON). One key holds one label:

- a redelivered or resent label is the same label (stored once);
- a corrected label replaces the stored one when its event time is later, or equal
  (then the later received wins); a label with an *earlier* event time than the stored
  one is ignored, so a late redelivery of a superseded label cannot undo a correction.

Pure logic; the adapter (``adapters/label_store.py``) applies the rule in one upsert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_events.values import make_value, value_to_python

__all__ = ["MAX_KEY_CHARS", "Label", "LabelRejected", "Scalar", "label_event", "label_of"]

Scalar = str | int | float | bool | None
MAX_KEY_CHARS = 1024


class LabelRejected(ValueError):
    """A label that cannot be stored, with the reason (a 4xx, or the DLQ)."""


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
        if not self.model_name.strip():
            raise LabelRejected("model_name is empty")
        if len(self.model_name) > 255:
            raise LabelRejected("model_name is longer than 255 characters")
        if not self.request_id and not self.entity_keys:
            raise LabelRejected("a label needs a request_id or entity_keys")
        if self.request_id is not None and len(self.request_id) > 255:
            raise LabelRejected("request_id is longer than 255 characters")
        if self.event_time.tzinfo is None:
            raise LabelRejected("event_time has no time zone")
        if isinstance(self.ground_truth, float) and not math.isfinite(self.ground_truth):
            raise LabelRejected("ground_truth is not a finite number")
        if _beyond_int64(self.ground_truth):
            raise LabelRejected("ground_truth is an integer beyond 64 bits")
        for name, value in self.entity_keys.items():
            if not isinstance(value, str | int | float | bool) or isinstance(value, float):
                raise LabelRejected(f"entity key {name!r} is not a string, integer or bool")
            if _beyond_int64(value):
                raise LabelRejected(f"entity key {name!r} is an integer beyond 64 bits")
        if len(self.key) > MAX_KEY_CHARS:
            raise LabelRejected(f"the label's key is longer than {MAX_KEY_CHARS} characters")

    @property
    def key(self) -> str:
        """What identifies the label within its model: request id, else the entity keys."""
        if self.request_id:
            return f"request:{self.request_id}"
        canonical = json.dumps(dict(self.entity_keys), sort_keys=True, separators=(",", ":"))
        return f"entities:{canonical}"


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
    if not message.HasField("event_time"):
        raise LabelRejected("event_time is missing")
    if not message.HasField("ground_truth"):
        raise LabelRejected("ground_truth is missing")
    truth = value_to_python(message.ground_truth)
    if not isinstance(truth, str | int | float | bool) and truth is not None:
        raise LabelRejected("ground_truth is not a string, number, bool or null")
    keys: dict[str, Scalar] = {}
    for name, value in message.entity_keys.items():
        key = value_to_python(value)
        if not isinstance(key, str | int | bool):
            raise LabelRejected(f"entity key {name!r} is not a string, integer or bool")
        keys[name] = key
    return Label(
        model_name=message.model_name,
        ground_truth=truth,
        event_time=message.event_time.ToDatetime(tzinfo=UTC),
        request_id=message.request_id or None,
        entity_keys=keys,
    )
