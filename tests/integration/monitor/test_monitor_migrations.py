"""The monitor's migrations create exactly the schema the code declares, and convert the
stream state stored by an earlier layout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from driftloop.common.v1.common_pb2 import Value
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database, sync_url
from driftloop_kit.migrations import alembic_config, upgrade
from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.adapters.tables import ALL_METADATA
from driftloop_monitor.domain.windows import VersionKey
from driftloop_monitor.entrypoints.app import MIGRATIONS
from tests.fakes.monitor import fake_monitor

from ..schema import migrated_schema_differences

pytestmark = pytest.mark.integration


def test_upgraded_database_matches_the_declared_tables(database_url: str) -> None:
    differences = migrated_schema_differences(database_url, MIGRATIONS, ALL_METADATA)
    assert differences == [], "tables.py changed without a migration: " + repr(differences[:5])


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own (the module's PostgreSQL one is migrated to the head)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'previous.db'}"
    create: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return create()


WINDOW_ID = "iris/1/20261204T120000.000000Z-abcdef"
ROWS: list[dict[str, Any]] = [
    {"x": 1.5, "n": 3, "colour": "red"},
    {"x": 2.0, "n": 4, "colour": "blue"},
    {"x": -0.5, "n": 5, "colour": None},
]
LATER = time.time() + 3600


def _write_previous_layout(database_url: str) -> None:
    """Stream state as the engine of revision 0003 stored it: a row per prediction."""
    engine = sa.create_engine(sync_url(database_url))
    common = {"window_id": WINDOW_ID, "partition": 2, "model_name": "iris", "version": 1}
    prediction = {"model_name": "iris", "version": 1, "run_id": "r" * 32, "expires": LATER}
    try:
        with engine.begin() as connection:
            metadata = sa.MetaData()
            rows = sa.Table("monitor_window_rows", metadata, autoload_with=connection)
            pending = sa.Table("monitor_pending_labels", metadata, autoload_with=connection)
            # Inserted out of order: the previous engine reloaded them by time.
            connection.execute(
                rows.insert(),
                [
                    {**common, "event_id": e, "idx": i, "time": t, "row": ROWS[n]}
                    | {"run_id": "r" * 32, "seen": 500.0 + n, "traceparent": None}
                    for e, i, t, n in (
                        ("e2", 1, 101.0, 2),
                        ("e1", 0, 100.0, 0),
                        ("e2", 0, 101.0, 1),
                    )
                ],
            )
            connection.execute(
                pending.insert(),
                [
                    {**prediction, "event_id": "p1", "request_id": "req-1", "partition": 2}
                    | {"prediction": "dog", "time": 100.0},
                    {**prediction, "event_id": "p2", "request_id": "req-2", "partition": 4}
                    | {"prediction": 0.25, "time": 102.0},
                ],
            )
            connection.execute(
                pending.insert().values(
                    **prediction,
                    event_id="p3",
                    request_id="req-3",
                    partition=2,
                    prediction="cat",
                    time=101.0,
                    truth="cat",
                    perf_window="iris/1/perf",
                )
            )
    finally:
        engine.dispose()


async def test_stream_state_of_the_previous_layout_is_loaded_after_the_upgrade(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url, MIGRATIONS, revision="0003")
    _write_previous_layout(empty_database_url)

    upgrade(empty_database_url, MIGRATIONS)

    database = Database(empty_database_url)
    try:
        chunks, pending, _ = await MonitorStore(database).stream_state(group="g", partitions=[2, 4])
    finally:
        await database.dispose()
    # The window's three rows, in the order the previous engine reloaded them, as one chunk.
    assert [(c.window_id, c.position, c.partition, c.key) for c in chunks] == [
        (WINDOW_ID, 0, 2, VersionKey("iris", 1))
    ]
    assert chunks[0].rows == ROWS
    assert (chunks[0].start, chunks[0].last, chunks[0].seen) == (100.0, 101.0, 500.0)
    waiting = {p["event_id"]: p for p in pending if p["perf_window"] is None}
    assert {e: (p["request_id"], p["prediction"]) for e, p in waiting.items()} == {
        "p1": ("req-1", "dog"),
        "p2": ("req-2", 0.25),
    }
    joined = [p for p in pending if p["perf_window"] is not None]
    assert [(p["event_id"], p["request_id"], p["truth"], p["perf_window"]) for p in joined] == [
        ("p3", "req-3", "cat", "iris/1/perf")
    ]

    # The use cases take it up: the window holds its rows, a label finds its prediction.
    monitor = fake_monitor(window_rows=10)
    await monitor.restore(chunks=chunks, pending=pending)
    assert monitor.open_windows() == {"iris/1": 3}
    label = monitor_events.LabelRecorded(
        request_id="req-2", model_name="iris", ground_truth=Value(double_value=0.25)
    )
    assert await monitor.labels.on_label(CloudEvent.new(label)) == 1


async def test_a_downgrade_below_0004_gives_the_state_back_in_the_previous_layout(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url, MIGRATIONS, revision="0003")
    _write_previous_layout(empty_database_url)
    upgrade(empty_database_url, MIGRATIONS)

    command.downgrade(alembic_config(empty_database_url, MIGRATIONS), "0003")

    engine = sa.create_engine(sync_url(empty_database_url))
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            rows = sa.Table("monitor_window_rows", metadata, autoload_with=connection)
            pending = sa.Table("monitor_pending_labels", metadata, autoload_with=connection)
            back = connection.execute(
                sa.select(rows.c.window_id, rows.c.row).order_by(
                    rows.c.time, rows.c.event_id, rows.c.idx
                )
            ).all()
            waiting = connection.execute(
                sa.select(pending.c.event_id, pending.c.request_id, pending.c.perf_window)
            ).all()
    finally:
        engine.dispose()
    assert back == [(WINDOW_ID, row) for row in ROWS]
    assert sorted(waiting) == [
        ("p1", "req-1", None),
        ("p2", "req-2", None),
        ("p3", "req-3", "iris/1/perf"),
    ]
