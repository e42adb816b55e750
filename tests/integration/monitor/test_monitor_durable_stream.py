"""The default stream engine is durable: open windows and label joins survive a restart
and move with their partitions between replicas; no window is decided twice."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka.partitioner import DefaultPartitioner
from psycopg import sql
from sqlalchemy.engine import make_url

from driftloop.common.v1.common_pb2 import Value
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_monitor.adapters.tables import window_chunks
from driftloop_monitor.entrypoints.stream import BusMonitorStream

from ...unit.monitor.data import frame
from ..bus.helpers import eventually
from .conftest import RunningMonitor, monitor_running, monitor_settings

pytestmark = pytest.mark.integration

PARTITIONS = TOPICS["predictions"].partitions


def _policy(window: int, performance: int) -> dict[str, Any]:
    return {
        "window_rows": window,
        "window_seconds": 3600,
        "performance_metric": "accuracy",
        "performance_threshold": 0.5,
        "performance_window_rows": performance,
    }


async def _put_policy(service: RunningMonitor, model: str, window: int, performance: int) -> None:
    response = await service.client.put(f"/policies/{model}", json=_policy(window, performance))
    assert response.status_code == 200, response.text


async def _predict(service: RunningMonitor, model: str, count: int, *, seed: int) -> list[str]:
    """``count`` predictions of version 1 of ``model``, each answered "dog"; their ids."""
    return await service.predict(
        model, 1, _rows(count, seed=seed), outputs=[{"prediction": "dog"}] * count
    )


async def _label(service: RunningMonitor, model: str, request_id: str) -> None:
    label = monitor_events.LabelRecorded(
        request_id=request_id, model_name=model, ground_truth=Value(string_value="dog")
    )
    await service.publisher.publish_and_wait(CloudEvent.new(label))


async def _stored(service: RunningMonitor, *models: str) -> tuple[int, int, int]:
    """Rows of open windows, waiting predictions and joined ones of ``models`` in the
    database (the session's broker holds other tests' predictions too)."""
    stream = service.stream
    assert isinstance(stream, BusMonitorStream)
    chunks, pending, _ = await stream.store.stream_state(
        group=stream.group, partitions=list(range(PARTITIONS))
    )
    rows = sum(len(c.rows) for c in chunks if c.key.model in models)
    pending = [p for p in pending if p["model_name"] in models]
    joined = sum(1 for p in pending if p["perf_window"] is not None)
    return rows, len(pending) - joined, joined


async def _results(service: RunningMonitor, model: str, kind: str) -> list[dict[str, Any]]:
    response = await service.client.get(f"/models/{model}/{kind}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
    return frame(count, seed=seed)[["x0", "x1", "colour"]].to_dict("records")  # type: ignore[no-any-return]


async def test_a_restarted_monitor_finishes_the_open_window_and_the_label_joins_it_had(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    settings = monitor_settings(database_url=database_url, tmp_path=tmp_path, broker=broker)
    model = f"restart-{uuid.uuid4().hex[:8]}"
    async with monitor_running(settings) as first:
        await _put_policy(first, model, 40, 20)
        ids = await _predict(first, model, 25, seed=1)

        async def predicted() -> bool:
            return (await _stored(first, model))[0] == 25

        await eventually(predicted, timeout=30)
        for request_id in ids[:10]:
            await _label(first, model, request_id)

        async def stored() -> bool:
            return await _stored(first, model) == (25, 15, 10)

        await eventually(stored, timeout=30)
        assert first.monitor.open_windows()[f"{model}/1"] == 25
    # The first process is gone: its window (25 of 40 rows) and its joins are only stored.

    async with monitor_running(settings) as second:
        assert await _stored(second, model) == (25, 15, 10)
        more = await _predict(second, model, 15, seed=2)

        async def predicted_again() -> bool:
            return bool(await _results(second, model, "drift"))

        await eventually(predicted_again, timeout=60)
        for request_id in ids[10:] + more[:5]:
            await _label(second, model, request_id)

        async def decided() -> bool:
            drift = await _results(second, model, "drift")
            performance = await _results(second, model, "performance")
            return len(drift) >= 1 and len(performance) >= 1

        await eventually(decided, timeout=60)
        await second.monitor.drain(timeout=30)
        drift = await _results(second, model, "drift")
        performance = await _results(second, model, "performance")
        # One window of 40 rows: 25 from before the restart, 15 after; decided once.
        assert [w["rows"] for w in drift] == [40]
        # 20 joined predictions (10 joined before the restart) made one performance window.
        assert [p["rows"] for p in performance] == [20]

        # The decided windows' rows are gone; 10 predictions still wait for a label, 10
        # joined ones fill the next performance window.
        async def settled() -> bool:
            return await _stored(second, model) == (0, 10, 10)

        await eventually(settled, timeout=30)
        assert len(await _results(second, model, "performance")) == 1


def _models_on_both_halves(count_each: int) -> list[str]:
    """Model names whose records fall in partitions 0-2 and in 3-5, ``count_each`` each
    (the range assignment gives each of two replicas one half)."""
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    low: list[str] = []
    high: list[str] = []
    while len(low) < count_each or len(high) < count_each:
        name = f"replica-{uuid.uuid4().hex[:8]}"
        side = low if partitioner(name.encode(), partitions, partitions) < PARTITIONS // 2 else high
        if len(side) < count_each:
            side.append(name)
    return low + high


async def test_two_replicas_split_the_models_and_one_stopping_loses_and_doubles_no_window(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    settings = monitor_settings(database_url=database_url, tmp_path=tmp_path, broker=broker)
    models = _models_on_both_halves(2)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(monitor_running(settings))
        b_stack = AsyncExitStack()
        b = await b_stack.enter_async_context(monitor_running(settings))
        stream_a, stream_b = a.stream, b.stream
        assert isinstance(stream_a, BusMonitorStream)
        assert isinstance(stream_b, BusMonitorStream)

        async def split() -> bool:
            return (
                bool(stream_a.partitions)
                and stream_a.partitions.isdisjoint(stream_b.partitions)
                and len(stream_a.partitions | stream_b.partitions) == PARTITIONS
            )

        await eventually(split, timeout=60)
        ids: dict[str, list[str]] = {}
        for model in models:
            await _put_policy(a, model, 30, 10)
            ids[model] = await _predict(a, model, 20, seed=3)

        async def predicted() -> bool:
            return (await _stored(a, *models))[0] == 20 * len(models)

        await eventually(predicted, timeout=30)
        for model in models:
            for request_id in ids[model][:5]:
                await _label(a, model, request_id)

        async def stored() -> bool:
            return await _stored(a, *models) == (
                20 * len(models),
                15 * len(models),
                5 * len(models),
            )

        await eventually(stored, timeout=30)
        # Each replica holds the open windows of its own models only.
        mine = {f"{m}/1" for m in models}
        held_a = mine & set(a.monitor.open_windows())
        held_b = mine & set(b.monitor.open_windows())
        assert held_a.isdisjoint(held_b)
        assert held_a | held_b == mine
        assert held_a
        assert held_b

        await b_stack.aclose()  # replica b stops mid-episode; a takes its partitions over

        async def alone() -> bool:
            return len(stream_a.partitions) == PARTITIONS

        await eventually(alone, timeout=60)
        assert mine <= set(a.monitor.open_windows())
        for model in models:
            await _predict(a, model, 10, seed=4)

        async def windows_decided() -> bool:
            return all([await _results(a, model, "drift") for model in models])

        await eventually(windows_decided, timeout=90)
        for model in models:
            for request_id in ids[model][5:10]:
                await _label(a, model, request_id)

        async def decided() -> bool:
            for model in models:
                if not await _results(a, model, "drift"):
                    return False
                if not await _results(a, model, "performance"):
                    return False
            return True

        await eventually(decided, timeout=90)
        await a.monitor.drain(timeout=30)
        for model in models:
            assert [w["rows"] for w in await _results(a, model, "drift")] == [30], model
            assert [p["rows"] for p in await _results(a, model, "performance")] == [10], model
        assert (await _stored(a, *models))[0] == 0  # every decided window's rows are gone


async def test_offsets_stored_past_the_logs_end_read_the_new_log_from_its_start(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    # A broker that lost its log (a recreated topic; the deploy test's in-memory stand-in
    # restarted) numbers records from 0 again, below the offsets the monitor stored.
    settings = monitor_settings(database_url=database_url, tmp_path=tmp_path, broker=broker)
    later = settings.model_copy(update={"consumer_group": f"{settings.consumer_group}-later"})
    model = f"recreated-{uuid.uuid4().hex[:8]}"
    async with monitor_running(settings) as first:
        stream = first.stream
        assert isinstance(stream, BusMonitorStream)
        past_the_end = {
            (topic, p): 10**9 for topic in ("predictions", "labels") for p in range(PARTITIONS)
        }
        await stream.store.store_batch(
            windows=[], pending=[], joined=[], group=later.consumer_group, offsets=past_the_end
        )

    async with monitor_running(later) as second:
        await _put_policy(second, model, 40, 20)
        await _predict(second, model, 5, seed=3)

        async def consumed() -> bool:
            return (await _stored(second, model))[0] == 5

        await eventually(consumed, timeout=30)


@asynccontextmanager
async def _database_away(database_url: str) -> AsyncIterator[None]:
    """The monitor's writes fail while inside: SQLite's file is locked past the busy
    timeout (5 s); on PostgreSQL a lock holds the monitor's write, and its connections
    are terminated on the way out, as a restart does."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        lock = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            yield
            lock.execute("COMMIT")
        finally:
            lock.close()
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(plain) as holder:
        await holder.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(window_chunks.name)
            )
        )
        yield
        await holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


async def test_a_database_outage_holds_the_batch_until_the_database_is_back(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    settings = monitor_settings(database_url=database_url, tmp_path=tmp_path, broker=broker)
    model = f"outage-{uuid.uuid4().hex[:8]}"
    async with monitor_running(settings) as service:
        await _put_policy(service, model, 40, 20)
        async with _database_away(database_url):
            await _predict(service, model, 10, seed=4)
            await asyncio.sleep(7)  # the batch's write fails (or hangs until terminated)
        # Consuming went on after the outage: the batch during it and the one after it.
        await _predict(service, model, 5, seed=5)

        async def stored() -> bool:
            return (await _stored(service, model))[:2] == (15, 15)

        await eventually(stored, timeout=60)
        assert service.monitor.open_windows()[f"{model}/1"] == 15
