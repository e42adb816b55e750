"""How old the features of keyed predictions were when the model saw them.

A keyed prediction (entity keys sent, features read from the feature store) is
logged with each feature's event time in the store (``PredictionLogged.feature_times``);
``driftloop_monitor_feature_age_seconds{model}`` observes, for every feature read, the
request's time minus that event time: stale features (an ingestion that stopped, a
materialization that lags) show there before they show as drift. Records without
``feature_times`` (features sent inline, or logged before the field existed) observe
nothing, for the cost of one length check.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Histogram

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_events.envelope import CloudEvent
from driftloop_monitor.service_layer.predictions import request_time

__all__ = ["FEATURE_AGE", "observe_feature_ages"]

FEATURE_AGE = Histogram(
    "driftloop_monitor_feature_age_seconds",
    "Age of each feature a keyed prediction read from the feature store (request time "
    "minus the feature's event time), by model.",
    ["model"],
    buckets=(1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400),
)

# One .labels() per model, not one per record (the stream's hot path).
_CHILDREN: dict[str, Any] = {}


def observe_feature_ages(event: CloudEvent[serving_events.PredictionLogged]) -> int:
    """Observe the age of every feature time of a prediction record.

    Returns:
        How many ages were observed (0 for a record without feature times; a null time,
        a feature the store held no fresh value of, is not an age).
    """
    logged = event.data
    if not logged.feature_times:
        return 0
    model = logged.model.name
    child = _CHILDREN.get(model)
    if child is None:
        child = _CHILDREN[model] = FEATURE_AGE.labels(model)
    at = request_time(event).timestamp()
    observed = 0
    for record in logged.feature_times:
        for value in record.fields.values():
            if value.WhichOneof("kind") != "timestamp_value":
                continue
            stamp = value.timestamp_value
            # A feature stamped after the request (clocks apart) is fresh: age 0.
            child.observe(max(0.0, at - stamp.seconds - stamp.nanos / 1e9))
            observed += 1
    return observed
