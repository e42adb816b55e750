"""The monitor's use cases with in-memory fakes: windows, alerts, labels, alias moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop.common.v1.common_pb2 import ModelRef, Value
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import make_record
from driftloop_monitor.domain.drift import make_reference
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.entrypoints.consumers import on_alias_set, on_prediction, on_predictions
from driftloop_monitor.service_layer.monitor import Monitor
from driftloop_monitor.service_layer.predictions import MalformedRecord, joinable
from tests.fakes.common import FakeOutbox
from tests.fakes.monitor import FakeSource, FakeStore, fake_monitor

from .data import frame

pytestmark = pytest.mark.unit

WINDOW = 200


@pytest.fixture
async def parts() -> AsyncIterator[tuple[Monitor, FakeStore, FakeOutbox, FakeSource]]:
    store, outbox = FakeStore(), FakeOutbox()
    source = FakeSource({("iris", 4): frame(500, seed=40)})
    monitor = fake_monitor(store=store, outbox=outbox, source=source, window_rows=WINDOW)
    await monitor.start()
    try:
        yield monitor, store, outbox, source
    finally:
        await monitor.stop()


def prediction(
    model: str, version: int, row: dict[str, Any], *, request_id: str = "r", answer: Any = 1.0
) -> CloudEvent[serving.PredictionLogged]:
    return CloudEvent.new(
        serving.PredictionLogged(
            request_id=request_id,
            model=ModelRef(name=model, version=version, run_id="f" * 32),
            inputs=[make_record(row)],
            outputs=[make_record({"prediction": answer})],
        )
    )


async def send(monitor: Monitor, model: str, version: int, data: pd.DataFrame) -> None:
    for row in data.to_dict("records"):
        await monitor.windows.on_prediction(prediction(model, version, row))
    await monitor.drain()


async def test_a_version_without_reference_data_has_its_rows_counted_not_tested(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, outbox, _ = parts
    await send(monitor, "iris", 9, frame(2 * WINDOW + 5, seed=1))
    assert [r["status"] for r in store.drift_results] == ["no_reference", "no_reference"]
    state = store.states[("iris", 9)]
    assert state.unreferenced_rows == 2 * WINDOW
    assert state.unreferenced_windows == 2
    assert monitor.open_windows() == {"iris/9": 5}
    assert outbox.events == []


async def test_drift_is_detected_once_then_cleared_when_the_data_returns(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, outbox, _ = parts
    store.references[("iris", 3)] = make_reference(frame(800, seed=2))
    shifted = ["x0", "x1", "x2", "x3", "colour"]
    for seed, moved in [(3, []), (4, shifted), (5, shifted), (6, []), (7, [])]:
        await send(monitor, "iris", 3, frame(WINDOW, seed=seed, shifted=moved))

    assert [r["dataset_drift"] for r in store.drift_results] == [False, True, True, False, False]
    assert [e.type.rsplit(".", 2)[-2:] for e in outbox.events] == [
        ["drift", "detected"],
        ["drift", "cleared"],
    ]
    detected, cleared = outbox.events
    assert sorted(c.column for c in detected.data.columns if c.drifted) == sorted(shifted)
    assert detected.data.model.run_id == "f" * 32
    assert detected.data.report_id in store.reports
    assert detected.data.report_url == f"http://monitor/reports/{detected.data.report_id}"
    assert cleared.data.cleared_event.id == detected.id
    # One episode: opened by the first drifted window, closed after two clear ones.
    assert cleared.data.episode_id == detected.data.episode_id != ""
    assert cleared.data.window.id == store.drift_results[4]["window_id"]
    assert not store.states[("iris", 3)].drifted


async def test_each_tested_window_sets_the_drift_score_of_every_column(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    from prometheus_client import REGISTRY

    monitor, store, _, _ = parts
    store.references[("iris", 3)] = make_reference(frame(800, seed=2))

    await send(monitor, "iris", 3, frame(WINDOW, seed=4, shifted=["x0"]))

    columns = store.drift_results[-1]["columns"]
    scores = {
        c["column"]: REGISTRY.get_sample_value(
            "driftloop_monitor_drift_score",
            {"model": "iris", "column": c["column"], "stattest": c["stattest"]},
        )
        for c in columns
    }
    assert "x0" in scores
    assert scores == {c["column"]: c["score"] for c in columns}


async def test_a_quiet_window_gets_its_full_report_on_request(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, _, _ = parts
    store.references[("iris", 3)] = make_reference(frame(800, seed=2))
    await send(monitor, "iris", 3, frame(WINDOW, seed=3))
    window = store.drift_results[0]["window_id"]
    report_id = await monitor.reports.for_window(window)
    assert report_id in store.reports
    assert await monitor.reports.for_window(window) == report_id


async def test_late_labels_join_and_a_drop_in_accuracy_publishes_performance_degraded(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, outbox, _ = parts
    store.policies["clf"] = MonitorPolicy(
        performance_metric="accuracy", performance_threshold=0.8, performance_window_rows=10
    )
    for i in range(20):
        event = prediction("clf", 1, {"x0": 1.0}, request_id=f"r{i}", answer="a")
        waiting = joinable(event)
        assert waiting is not None
        monitor.labels.remember(event)
        truth = "a" if i < 10 or i % 2 else "b"  # second window: 50% right
        label = CloudEvent.new(
            monitor_events.LabelRecorded(
                request_id=f"r{i}", model_name="clf", ground_truth=Value(string_value=truth)
            )
        )
        assert await monitor.labels.on_label(label) == 1
    await monitor.drain()

    assert [r["value"] for r in store.performance_results] == [1.0, 0.5]
    assert [e.data.metric for e in outbox.events] == ["accuracy"]
    assert outbox.events[0].data.value == 0.5
    assert store.states[("clf", 1)].labelled_rows == 20


async def test_a_new_champion_gets_reference_data_once_and_other_aliases_none(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, _, source = parts

    def moved(alias: str) -> CloudEvent[registry_events.AliasSet]:
        return CloudEvent.new(
            registry_events.AliasSet(name="iris", alias=alias, version=4, run_id="e" * 32)
        )

    await monitor.references.on_alias_set(moved("canary"))
    assert source.fetched == []
    await monitor.references.on_alias_set(moved("champion"))
    await monitor.references.on_alias_set(moved("champion"))  # redelivered: no second fetch
    assert source.fetched == [("iris", 4, "e" * 32)]
    assert store.references[("iris", 4)].source == "fake://iris/4"


async def test_a_prediction_without_model_or_inputs_is_malformed(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, _, _, _ = parts
    with pytest.raises(MalformedRecord):
        await monitor.windows.on_prediction(
            CloudEvent.new(serving.PredictionLogged(request_id="x"))
        )
    empty = CloudEvent.new(
        serving.PredictionLogged(request_id="x", model=ModelRef(name="iris", version=1))
    )
    with pytest.raises(MalformedRecord):
        await monitor.windows.on_prediction(empty)


async def test_a_replaced_champion_has_its_open_window_closed_at_once(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    monitor, store, _, _ = parts
    store.references[("iris", 3)] = make_reference(frame(800, seed=2))
    await send(monitor, "iris", 3, frame(WINDOW // 2, seed=3))  # half a window, open
    assert monitor.open_windows() == {"iris/3": WINDOW // 2}

    promoted = registry_events.AliasSet(
        name="iris", alias="champion", version=4, run_id="e" * 32, previous_version=3
    )
    await on_alias_set(monitor, CloudEvent.new(promoted))
    await monitor.drain()

    assert monitor.open_windows() == {}
    (result,) = store.drift_results
    assert (result["version"], result["rows"], result["status"]) == (3, WINDOW // 2, "tested")


async def test_a_batch_of_predictions_does_what_one_by_one_does_and_leaves_the_malformed(
    parts: tuple[Monitor, FakeStore, FakeOutbox, FakeSource],
) -> None:
    """The durable engine hands a partition's predictions over at once: the same windows,
    decisions and waiting predictions as one by one; malformed ones are left (by index)
    for the one-by-one handler, which dead-letters them with why."""
    batched, store, _, _ = parts
    one_by_one_store = FakeStore()
    one_by_one = fake_monitor(store=one_by_one_store, window_rows=WINDOW)
    await one_by_one.start()
    reference = make_reference(frame(800, seed=2))
    store.references[("iris", 3)] = one_by_one_store.references[("iris", 3)] = reference
    rows = frame(WINDOW + 50, seed=4, shifted=["x0", "x1", "x2", "x3", "colour"])
    events = [
        prediction("iris", 3, row, request_id=f"r{i}", answer=i % 2)
        for i, row in enumerate(rows.to_dict("records"))
    ]
    mistyped = prediction("iris", 3, {**rows.iloc[0].to_dict(), "x0": "text"}, request_id="bad")
    nameless = CloudEvent.new(serving.PredictionLogged(request_id="x"))
    try:
        for event in events:
            await on_prediction(one_by_one, event)
        left = await on_predictions(batched, [events[0], mistyped, *events[1:7], nameless])
        left += [9 + i for i in await on_predictions(batched, events[7:])]
        await one_by_one.drain()
        await batched.drain()
    finally:
        await one_by_one.stop()

    assert left == [1, 8]
    assert batched.open_windows() == one_by_one.open_windows() == {"iris/3": 50}
    decided = [(r["window_id"], r["rows"], r["dataset_drift"]) for r in store.drift_results]
    assert decided == [
        (r["window_id"], r["rows"], r["dataset_drift"]) for r in one_by_one_store.drift_results
    ]
    assert decided[0][1:] == (WINDOW, True)
    waiting = [
        [
            {k: v for k, v in entry.items() if k != "expires"}
            for entry in m.labels.waiting.get(b"r7")
        ]
        for m in (batched, one_by_one)
    ]
    assert waiting[0] == waiting[1] != []
    assert batched.labels.waiting.get(b"bad") == []
