"""The durable engine's stored state, batch by batch: what a replica writes is what the
next owner of the partition loads (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import ModelRef, Value
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import make_record
from driftloop_kit.db import Database
from driftloop_kit.migrations import upgrade
from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.adapters.waiting import MemoryWaiting
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.entrypoints.app import MIGRATIONS
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.monitor import Monitor
from driftloop_monitor.service_layer.predictions import request_time
from tests.fakes.common import FakeOutbox
from tests.fakes.monitor import FakeFiles, FakeSource, FakeStore

from ...unit.monitor.data import frame

pytestmark = pytest.mark.integration

PARTITION = 3
GROUP = "stream-state-test"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[MonitorStore]:
    upgrade(database_url, MIGRATIONS)
    database = Database(database_url)
    try:
        yield MonitorStore(database)
    finally:
        await database.dispose()


async def _monitor(model: str, journal: StateJournal | None = None) -> Monitor:
    """The use cases over fakes (windows of 5 rows, performance windows of 2)."""
    policies = FakeStore()
    policies.policies[model] = MonitorPolicy(window_rows=5, performance_window_rows=2)
    return Monitor.wire(
        store=policies,
        outbox=FakeOutbox(),
        files=FakeFiles(),
        source=FakeSource({}),
        waiting=MemoryWaiting(),
        base_url="http://monitor",
        journal=journal,
    )


def _predictions(model: str, rows: list[dict[str, Any]]) -> list[CloudEvent[Any]]:
    events = []
    for i, row in enumerate(rows):
        event = CloudEvent.new(
            serving.PredictionLogged(
                request_id=f"{model}-req-{i}",
                model=ModelRef(name=model, version=1, run_id="a" * 32),
                inputs=[make_record(row)],
                outputs=[make_record({"prediction": "dog"})],
            )
        )
        event.data.request_time.FromDatetime(event.time + timedelta(seconds=i))
        events.append(event)
    return events


async def _store(store: MonitorStore, journal: StateJournal, next_offset: int) -> None:
    changes = journal.take()
    await store.store_batch(
        windows=list(changes.windows.values()),
        pending=changes.pending,
        joined=changes.joined,
        group=GROUP,
        offsets={("predictions", PARTITION): next_offset},
    )


async def _mine(store: MonitorStore, model: str) -> tuple[list[Any], list[dict[str, Any]]]:
    chunks, pending, _ = await store.stream_state(group=GROUP, partitions=[PARTITION])
    return (
        [c for c in chunks if c.key.model == model],
        [p for p in pending if p["model_name"] == model],
    )


async def test_a_window_stored_over_several_batches_comes_back_whole_and_in_order(
    store: MonitorStore,
) -> None:
    model = f"chunks-{uuid.uuid4().hex[:8]}"
    journal = StateJournal()
    journal.partition = PARTITION
    first = await _monitor(model, journal)
    rows = frame(5, seed=1)[["x0", "x1", "colour"]].to_dict("records")
    events = _predictions(model, rows)
    for event in events[:2]:
        await first.windows.on_prediction(event)
        first.labels.remember(event)
    await _store(store, journal, 2)
    for event in events[2:]:
        await first.windows.on_prediction(event)
        first.labels.remember(event)
    changes = journal.changes
    await _store(store, journal, 5)
    journal.changes = changes  # written again: a commit whose answer was lost
    await _store(store, journal, 5)

    chunks, pending = await _mine(store, model)
    assert [(c.position, len(c.rows)) for c in chunks] == [(0, 2), (2, 3)]
    assert len({c.window_id for c in chunks}) == 1
    assert sorted(p["request_id"] for p in pending) == [f"{model}-req-{i}" for i in range(5)]

    # The next owner of the partition: the window is full, closed by rows, whole.
    second = await _monitor(model)
    closed = await second.windows.restore(chunks)
    assert [w.id for w in closed] == [chunks[0].window_id]
    assert closed[0].rows == rows
    assert closed[0].start == request_time(events[0])
    assert closed[0].end == request_time(events[-1]) + timedelta(microseconds=1)
    assert closed[0].closed_by == "rows"


async def test_predictions_of_a_decided_performance_window_do_not_wait_again(
    store: MonitorStore,
) -> None:
    model = f"joins-{uuid.uuid4().hex[:8]}"
    journal = StateJournal()
    journal.partition = PARTITION
    first = await _monitor(model, journal)
    events = _predictions(model, frame(3, seed=2)[["x0"]].to_dict("records"))
    for event in events:
        await first.windows.on_prediction(event)
        first.labels.remember(event)
    await _store(store, journal, 3)
    for event in events[:2]:
        label = monitor_events.LabelRecorded(
            request_id=event.data.request_id,
            model_name=model,
            ground_truth=Value(string_value="dog"),
        )
        assert await first.labels.on_label(CloudEvent.new(label)) == 1
    joined = journal.changes.joined
    await _store(store, journal, 3)

    _, pending = await _mine(store, model)
    assert sorted((p["request_id"], p["perf_window"] is None) for p in pending) == [
        (f"{model}-req-0", False),
        (f"{model}-req-1", False),
        (f"{model}-req-2", True),
    ]
    async with store.session() as session:  # the worker decided the performance window
        await store.forget_window(session, window_id=joined[0]["perf_window"])

    _, pending = await _mine(store, model)
    assert [p["request_id"] for p in pending] == [f"{model}-req-2"]
    second = await _monitor(model)
    await second.restore(chunks=[], pending=pending)
    label = monitor_events.LabelRecorded(
        request_id=f"{model}-req-0", model_name=model, ground_truth=Value(string_value="dog")
    )
    assert await second.labels.on_label(CloudEvent.new(label)) == 0  # joined once, before
