"""How old the features of keyed predictions were when the model saw them.

A keyed prediction (entity keys sent, features read from the feature store) is
logged with each feature's event time in the store (``PredictionLogged.feature_times``);
``driftloop_monitor_feature_age_seconds{model}`` observes, per row, the request's time
minus each distinct event time of its features: stale features (an ingestion that
stopped, a materialization that lags) show there before they show as drift. Features
of one feature view are written together and share their row's event time, so a row
observes one age per view, not one per feature. The first :data:`ROWS_OBSERVED` rows of
a record are observed, a bound on the stream's work per record: reading a row's times
costs about as much as reading its inputs (~7 us for 10 features), and a 100-row keyed
request would otherwise double its record's cost. Records without ``feature_times``
(features sent inline, or logged before the field existed) observe nothing, for the
cost of one length check.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from prometheus_client import Histogram

from driftloop.common.v1.common_pb2 import Record
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_events.envelope import CloudEvent
from driftloop_monitor.service_layer.predictions import request_time

__all__ = ["FEATURE_AGE", "ROWS_OBSERVED", "observe_feature_ages"]

FEATURE_AGE = Histogram(
    "driftloop_monitor_feature_age_seconds",
    "Age of the features a keyed prediction read from the feature store (request time "
    "minus event time; one observation per row and distinct event time), by model.",
    ["model"],
    buckets=(1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400),
)

#: Rows of a record whose feature times are observed (the first ones).
ROWS_OBSERVED = 16

# One .labels() per model, not one per record (the stream's hot path).
_CHILDREN: dict[str, Any] = {}


def observe_feature_ages(event: CloudEvent[serving_events.PredictionLogged]) -> int:
    """Observe the age of the feature times of a prediction record (its first rows).

    Returns:
        How many ages were observed (0 for a record without feature times; a null time,
        a feature the store held no fresh value of, is not an age; features of a row
        that share an event time are one age).
    """
    logged = event.data
    if not logged.feature_times:
        return 0
    model = logged.model.name
    child = _CHILDREN.get(model)
    if child is None:
        child = _CHILDREN[model] = FEATURE_AGE.labels(model)
    asked = logged.request_time
    at = (
        asked.seconds + asked.nanos / 1e9
        if asked.seconds or asked.nanos
        else request_time(event).timestamp()  # the event's time, as the windows use
    )
    observed = 0
    for record in islice(logged.feature_times, ROWS_OBSERVED):
        stamps = _distinct_stamps(record)
        for stamp in stamps:
            # A feature stamped after the request (clocks apart) is fresh: age 0.
            child.observe(max(0.0, at - stamp))
        observed += len(stamps)
    return observed


def _distinct_stamps(record: Record) -> list[float]:
    """A row's distinct event times, in seconds since the epoch (nulls left out)."""
    seen: set[tuple[int, int]] = set()
    for value in record.fields.values():
        if value.WhichOneof("kind") == "timestamp_value":
            stamp = value.timestamp_value
            seen.add((stamp.seconds, stamp.nanos))
    return [seconds + nanos / 1e9 for seconds, nanos in seen]
