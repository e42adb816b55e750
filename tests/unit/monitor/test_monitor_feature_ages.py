"""Keyed predictions' feature times: read from the record, observed as the features' age."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from driftloop.common.v1.common_pb2 import ModelRef, Value
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent, from_record, to_record
from driftloop_events.values import make_record
from driftloop_monitor.entrypoints.consumers import on_prediction
from driftloop_monitor.service_layer.feature_ages import ROWS_OBSERVED, observe_feature_ages
from driftloop_monitor.service_layer.monitor import Monitor
from tests.fakes.monitor import fake_monitor

pytestmark = pytest.mark.unit

ASKED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def monitor() -> AsyncIterator[Monitor]:
    monitor = fake_monitor(window_rows=1000)
    await monitor.start()
    try:
        yield monitor
    finally:
        await monitor.stop()


def ages(model: str) -> tuple[float, float]:
    """How many ages were observed for ``model``, and their sum."""
    labels = {"model": model}
    count = REGISTRY.get_sample_value("driftloop_monitor_feature_age_seconds_count", labels)
    total = REGISTRY.get_sample_value("driftloop_monitor_feature_age_seconds_sum", labels)
    return count or 0.0, total or 0.0


def keyed(model: str, *, times: bool) -> CloudEvent[serving.PredictionLogged]:
    """A two-row keyed prediction through the wire; ``times=False``: as logged before
    ``feature_times`` existed (the field absent from the bytes)."""
    logged = serving.PredictionLogged(
        request_id="req-1",
        model=ModelRef(name=model, version=1, run_id="f" * 32),
        inputs=[
            make_record({"a": 1.0, "b": 2.0, "c": 0.5, "flower_id": 7}),
            make_record({"a": 3.0, "b": 4.0, "c": 0.5, "flower_id": 8}),
        ],
        outputs=[make_record({"prediction": 0}), make_record({"prediction": 1})],
        request_time=ASKED,
    )
    if times:
        logged.feature_times.extend(
            [
                make_record(
                    {
                        "a": ASKED - timedelta(minutes=5),
                        "b": ASKED - timedelta(hours=1),
                        "c": ASKED - timedelta(hours=1),  # b's view: the same write
                    }
                ),
                make_record({"a": ASKED - timedelta(seconds=30), "b": None, "c": None}),
            ]
        )
    record = to_record(CloudEvent.new(logged))
    return from_record(record.value, record.headers)


async def test_a_keyed_record_observes_the_age_of_each_feature_read(monitor: Monitor) -> None:
    before = ages("aged")

    await on_prediction(monitor, keyed("aged", times=True))

    count, total = ages("aged")
    # Six times: two nulls (no fresh value in the store), two of one write in one row:
    # three ages, 5 min + 1 h + 30 s.
    assert count - before[0] == 3
    assert total - before[1] == pytest.approx(300 + 3600 + 30)
    assert monitor.windows.open_windows() == {"aged/1": 2}


async def test_a_record_without_feature_times_is_read_as_before(monitor: Monitor) -> None:
    event = keyed("unaged", times=False)

    await on_prediction(monitor, event)

    assert len(event.data.feature_times) == 0
    assert ages("unaged") == (0.0, 0.0)
    assert monitor.windows.open_windows() == {"unaged/1": 2}


async def test_a_feature_stamped_after_the_request_is_age_zero(monitor: Monitor) -> None:
    event = keyed("skewed", times=True)
    event.data.feature_times[0].fields["a"].CopyFrom(
        Value(timestamp_value=ASKED + timedelta(seconds=2))
    )
    del event.data.feature_times[1:]
    del event.data.feature_times[0].fields["b"]
    del event.data.feature_times[0].fields["c"]

    await on_prediction(monitor, event)

    assert ages("skewed") == (1.0, 0.0)


def test_only_the_first_rows_of_a_large_record_are_observed() -> None:
    event = keyed("large", times=True)
    first = event.data.feature_times[0]
    del event.data.feature_times[:]
    event.data.feature_times.extend([first] * (ROWS_OBSERVED + 4))

    observed = observe_feature_ages(event)

    # Two distinct times per row (a, and b with c), on the first ROWS_OBSERVED rows.
    assert observed == 2 * ROWS_OBSERVED
    assert ages("large")[0] == 2 * ROWS_OBSERVED
