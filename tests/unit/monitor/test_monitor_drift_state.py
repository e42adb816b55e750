"""The pure drift-state transition, and the two stores where predictions wait for labels."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop_monitor.adapters.waiting import MemoryWaiting, TableWaiting
from driftloop_monitor.domain.drift import ColumnDecision, DriftDecision
from driftloop_monitor.domain.drift_state import (
    AlertLink,
    PerformanceBounds,
    VersionState,
    after_performance,
    after_window,
)
from driftloop_monitor.domain.performance import PerformanceResult
from driftloop_monitor.domain.policy import EpisodeRule, MonitorPolicy
from driftloop_monitor.domain.windows import ClosedWindow, VersionKey
from driftloop_monitor.service_layer.ports import WaitingPredictionsPort

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LINK = AlertLink(
    report_id="rep-1", report_url="http://monitor/reports/rep-1", reference_digest="d", now=T0
)


def window(rows: int = 3) -> ClosedWindow:
    return ClosedWindow(
        id="iris/3/w",
        key=VersionKey("iris", 3),
        run_id="r",
        start=T0,
        end=T0 + timedelta(seconds=1),
        rows=[{"x0": float(i)} for i in range(rows)],
        closed_by="rows",
    )


def decision(drifted: bool) -> DriftDecision:
    column = ColumnDecision("x0", "num", "ks", "K-S p_value", 0.01, 0.05, drifted)
    return DriftDecision(
        columns=[column], share=float(drifted), drift_share=0.5, dataset_drift=drifted
    )


def test_a_version_that_starts_drifting_gets_drift_detected_and_a_drifted_state() -> None:
    before = VersionState(model="iris", version=3)

    step = after_window(before, window(), status="drift", decision=decision(True), link=LINK)

    (event,) = step.events
    assert event.type == "driftloop.monitor.drift.detected"
    assert event.data.report_url == LINK.report_url
    assert event.data.reference_digest == "d"
    assert (step.state.drifted, step.state.detected_event_id) == (True, event.id)
    assert (step.state.windows, step.state.rows) == (1, 3)
    assert (before.drifted, before.windows) == (False, 0)  # the old state is left alone


def test_drift_cleared_names_the_detected_event_and_a_steady_state_sends_nothing() -> None:
    drifting = VersionState(
        model="iris",
        version=3,
        drifted=True,
        detected_event_id="ev-1",
        drift_episode_id="ep-iris-3-1",
    )
    at_once = EpisodeRule(close_after_windows=1)

    still = after_window(
        drifting, window(), status="drift", decision=decision(True), link=LINK, rule=at_once
    )
    cleared = after_window(
        drifting, window(), status="tested", decision=decision(False), link=LINK, rule=at_once
    )

    assert still.events == ()
    assert still.state.drifted
    (event,) = cleared.events
    assert event.type == "driftloop.monitor.drift.cleared"
    assert event.data.cleared_event.id == "ev-1"
    assert event.data.episode_id == "ep-iris-3-1"
    assert (cleared.state.drifted, cleared.state.detected_event_id) == (False, None)
    assert cleared.state.drift_episode_id is None


def run_windows(
    drifts: list[bool], rule: EpisodeRule | None = None, shares: list[float] | None = None
) -> tuple[VersionState, list[Any]]:
    """Decide one window per entry; the final state and every event published."""
    state = VersionState(model="iris", version=3)
    published: list[Any] = []
    for i, drifted in enumerate(drifts):
        decided = decision(drifted)
        if shares is not None:
            decided = replace(decided, share=shares[i])
        status = "drift" if drifted else "tested"
        step = after_window(state, window(), status=status, decision=decided, link=LINK, rule=rule)
        state = step.state
        published += step.events
    return state, published


def test_drift_that_flaps_every_window_is_one_episode_and_one_alert() -> None:
    state, published = run_windows([True, False] * 5)

    assert [e.type for e in published] == ["driftloop.monitor.drift.detected"]
    assert state.drifted
    assert state.drift_episode_id == published[0].data.episode_id
    assert state.drift_episode_windows == 10


def test_a_persistent_drift_alerts_once_over_twenty_windows() -> None:
    state, published = run_windows([True] * 20)

    (detected,) = published
    assert detected.data.episode_id.startswith("ep-iris-3-")
    assert state.drift_episode_windows == 20


def test_an_episode_closes_after_the_stated_clear_windows_in_a_row_and_a_new_one_opens_anew() -> (
    None
):
    state, published = run_windows(
        [True, False, False, False, True], rule=EpisodeRule(close_after_windows=3)
    )

    assert [e.type.rsplit(".", 1)[-1] for e in published] == ["detected", "cleared", "detected"]
    first, cleared, second = (e.data.episode_id for e in published)
    assert first == cleared
    assert second != first
    assert state.drift_episode_id == second


def test_hysteresis_a_window_above_the_close_share_keeps_the_episode_open() -> None:
    # Open at share >= 0.5; close only below 0.2: a 0.3 window (no dataset drift) is not clear.
    rule = EpisodeRule(close_after_windows=1, drift_close_share=0.2)
    _, kept = run_windows([True, False], rule=rule, shares=[0.6, 0.3])
    _, closed = run_windows([True, False], rule=rule, shares=[0.6, 0.1])

    assert [e.type.rsplit(".", 1)[-1] for e in kept] == ["detected"]
    assert [e.type.rsplit(".", 1)[-1] for e in closed] == ["detected", "cleared"]


def test_a_close_share_above_the_open_share_is_refused() -> None:
    with pytest.raises(ValueError, match="drift_close_share"):
        MonitorPolicy(drift_share=0.4, drift_close_share=0.5)


def perf(value: float) -> PerformanceResult:
    return PerformanceResult(
        metric="accuracy", value=value, threshold=0.8, higher_is_better=True, rows=200
    )


BOUNDS = PerformanceBounds(key=VersionKey("iris", 3), run_id="r", window_id="w", start=T0, end=T0)


def test_degraded_performance_alerts_once_per_episode_and_recovers_after_clear_windows() -> None:
    state = VersionState(model="iris", version=3)
    published: list[Any] = []
    for value in [0.9, 0.6, 0.5, 0.7, 0.9, 0.6, 0.9, 0.95, 0.9]:
        step = after_performance(state, perf(value), rows=200, where=BOUNDS, link=LINK)
        state, published = step.state, published + list(step.events)

    assert [e.type.rsplit(".", 1)[-1] for e in published] == ["degraded", "recovered"]
    degraded, recovered = published
    assert degraded.data.episode_id == recovered.data.episode_id
    assert recovered.data.value == 0.95
    assert state.performance_episode_id is None
    assert state.labelled_rows == 9 * 200


def test_a_window_without_reference_data_is_counted_and_decides_nothing() -> None:
    step = after_window(
        VersionState(model="iris", version=3),
        window(5),
        status="no_reference",
        decision=None,
        link=LINK,
    )

    assert step.events == ()
    assert (step.state.unreferenced_rows, step.state.unreferenced_windows) == (5, 1)


class FakeFaustApp:
    """Creates tables as dicts (the part of a faust app :class:`TableWaiting` uses)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes | None]] = {}

    def Table(  # faust's name
        self, name: str, *, default: Any, partitions: int
    ) -> dict[bytes, bytes | None]:
        return self.tables.setdefault(name, {})


def table_waiting() -> TableWaiting:
    waiting = TableWaiting(partitions=4)
    waiting.attach(FakeFaustApp())
    return waiting


@pytest.mark.parametrize("make", [MemoryWaiting, table_waiting], ids=["memory", "faust-table"])
def test_both_waiting_stores_keep_get_and_forget_the_entries_of_a_request(
    make: Any,
) -> None:
    waiting: WaitingPredictionsPort = make()
    entry = {"model": "iris", "version": 3, "time": 1.0, "prediction": "a"}

    assert waiting.get(b"r1") == []
    waiting.put(b"r1", [entry])
    assert waiting.get(b"r1") == [entry]
    waiting.drop(b"r1")
    waiting.drop(b"r1")  # twice is fine
    assert waiting.get(b"r1") == []


def test_the_faust_table_store_refuses_use_before_the_engine_attaches_it() -> None:
    with pytest.raises(RuntimeError, match="attached"):
        TableWaiting(partitions=4).get(b"r1")
