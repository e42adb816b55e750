"""Tumbling windows per model version, by count and by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop_monitor.domain.windows import ClosedWindow, VersionKey, Windows

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
V1 = VersionKey("iris", 1)
V2 = VersionKey("iris", 2)


def add(
    windows: Windows, key: VersionKey, second: float, n: int = 1, **limits: float
) -> list[ClosedWindow]:
    at = T0 + timedelta(seconds=second)
    return windows.add(
        key,
        run_id="r",
        time=at,
        rows=[{"x": second}] * n,
        max_rows=int(limits.get("rows", 3)),
        max_seconds=limits.get("seconds", 60.0),
        now=at,
    )


def test_a_window_closes_at_its_row_count_and_the_next_row_opens_a_new_one() -> None:
    windows = Windows()
    assert add(windows, V1, 0) == []
    assert add(windows, V1, 1) == []
    closed = add(windows, V1, 2)
    assert len(closed) == 1
    assert [r["x"] for r in closed[0].rows] == [0, 1, 2]
    assert closed[0].closed_by == "rows"
    assert closed[0].start == T0
    assert closed[0].end == T0 + timedelta(seconds=2, microseconds=1)
    assert add(windows, V1, 3) == []
    assert dict(windows.open_rows()) == {V1: 1}


def test_versions_have_separate_windows() -> None:
    windows = Windows()
    add(windows, V1, 0)
    add(windows, V2, 0)
    add(windows, V1, 1)
    assert dict(windows.open_rows()) == {V1: 2, V2: 1}


def test_a_row_past_the_time_limit_closes_the_window_before_it_joins_the_next() -> None:
    windows = Windows()
    add(windows, V1, 0, rows=100, seconds=10)
    add(windows, V1, 5, rows=100, seconds=10)
    closed = add(windows, V1, 12, rows=100, seconds=10)
    assert len(closed) == 1
    assert closed[0].closed_by == "time"
    assert len(closed[0].rows) == 2
    assert closed[0].end == T0 + timedelta(seconds=10)
    assert dict(windows.open_rows()) == {V1: 1}


def test_a_quiet_window_closes_on_the_clock_after_its_length() -> None:
    windows = Windows()
    add(windows, V1, 0, rows=100, seconds=10)
    assert windows.expired(T0 + timedelta(seconds=9)) == []
    closed = windows.expired(T0 + timedelta(seconds=10))
    assert [len(w.rows) for w in closed] == [1]
    assert len(windows) == 0


def test_old_event_times_do_not_close_windows_on_the_clock_at_once() -> None:
    windows = Windows()
    replayed = T0 - timedelta(days=3)
    windows.add(V1, run_id="r", time=replayed, rows=[{"x": 1}], max_rows=10, max_seconds=60, now=T0)
    assert windows.expired(T0 + timedelta(seconds=30)) == []
    assert len(windows.expired(T0 + timedelta(seconds=61))) == 1


def test_a_batch_request_can_close_a_window_and_open_the_next() -> None:
    windows = Windows()
    closed = add(windows, V1, 0, n=7, rows=3)
    assert [len(w.rows) for w in closed] == [3, 3]
    assert dict(windows.open_rows()) == {V1: 1}
    assert len({w.id for w in closed}) == 2
