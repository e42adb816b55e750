"""Keyed prediction records through the broker: the monitor reads their feature times.

Records with ``feature_times`` (a keyed request's) move
``driftloop_monitor_feature_age_seconds{model}`` on ``/metrics``; a record without the
field (features inline, or logged before it existed) is windowed as before.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import make_record

from ..bus.helpers import eventually
from .conftest import RunningMonitor

pytestmark = pytest.mark.integration


def logged(
    model: str, *, written: datetime | None, asked: datetime
) -> CloudEvent[serving.PredictionLogged]:
    """A one-row keyed prediction of flower 7, its features written at ``written``
    (``None``: a record without feature times)."""
    event = CloudEvent.new(
        serving.PredictionLogged(
            request_id=f"req-{uuid.uuid4().hex[:12]}",
            model=ModelRef(name=model, version=1, run_id="a" * 32),
            alias="champion",
            route=serving.ROUTE_CHAMPION,
            inputs=[make_record({"sepal_length": 5.1, "petal_width": 0.2, "flower_id": 7})],
            outputs=[make_record({"prediction": "setosa"})],
            latency_ms=1.0,
            request_time=asked,
        )
    )
    if written is not None:
        event.data.feature_times.append(
            make_record({"sepal_length": written, "petal_width": written})
        )
    return event


async def ages(service: RunningMonitor, model: str) -> tuple[float, float]:
    """The count and sum of the model's feature ages on ``/metrics``."""
    text = (await service.client.get("/metrics")).text
    found = {"count": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name != "driftloop_monitor_feature_age_seconds":
            continue
        for sample in family.samples:
            kind = sample.name.rsplit("_", 1)[-1]
            if sample.labels.get("model") == model and kind in found:
                found[kind] = sample.value
    return found["count"], found["sum"]


async def test_keyed_records_move_the_feature_age_and_old_records_still_window(
    running_monitor: RunningMonitor,
) -> None:
    service = running_monitor
    model = f"aged-{uuid.uuid4().hex[:8]}"
    asked = datetime.now(UTC).replace(microsecond=0)
    events = [
        logged(model, written=asked - timedelta(minutes=10), asked=asked),
        logged(model, written=asked - timedelta(hours=2), asked=asked),
        logged(model, written=None, asked=asked),
    ]
    for event in events:
        await (await service.publisher.publish(event))

    async def windowed() -> bool:
        return service.monitor.windows.open_windows().get(f"{model}/1") == 3

    # Records of one model are handled in order: the third windowed, the first two observed.
    await eventually(windowed, timeout=30)
    count, total = await ages(service, model)
    # One age per record with times (its two features share one write): 10 min + 2 h.
    assert count == 2
    assert total == pytest.approx(600 + 7200)
