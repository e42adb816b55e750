"""The pure drift-state transition, and the two stores where predictions wait for labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop_monitor.adapters.waiting import MemoryWaiting, TableWaiting
from driftloop_monitor.domain.drift import ColumnDecision, DriftDecision
from driftloop_monitor.domain.drift_state import AlertLink, VersionState, after_window
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
    drifting = VersionState(model="iris", version=3, drifted=True, detected_event_id="ev-1")

    still = after_window(drifting, window(), status="drift", decision=decision(True), link=LINK)
    cleared = after_window(drifting, window(), status="tested", decision=decision(False), link=LINK)

    assert still.events == ()
    assert still.state.drifted
    (event,) = cleared.events
    assert event.type == "driftloop.monitor.drift.cleared"
    assert event.data.cleared_event.id == "ev-1"
    assert (cleared.state.drifted, cleared.state.detected_event_id) == (False, None)


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
