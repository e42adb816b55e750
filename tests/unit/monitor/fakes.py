"""In-memory stand-ins for the monitor's store, outbox, report files and reference source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd

from driftloop_events.envelope import CloudEvent
from driftloop_monitor.adapters.references import ReferenceSource
from driftloop_monitor.adapters.store import VersionState
from driftloop_monitor.domain.drift import ReferenceSet
from driftloop_monitor.domain.policy import MonitorPolicy


class FakeStore:
    """The subset of MonitorStore the use cases call, in dicts."""

    def __init__(self) -> None:
        self.policies: dict[str, MonitorPolicy] = {}
        self.references: dict[tuple[str, int], ReferenceSet] = {}
        self.states: dict[tuple[str, int], VersionState] = {}
        self.drift_results: list[dict[str, Any]] = []
        self.performance_results: list[dict[str, Any]] = []
        self.reports: dict[str, dict[str, Any]] = {}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        yield None

    async def get_policy(self, model: str) -> MonitorPolicy | None:
        return self.policies.get(model)

    async def put_reference(self, model: str, version: int, reference: ReferenceSet) -> None:
        self.references[(model, version)] = reference

    async def get_reference(self, model: str, version: int) -> ReferenceSet | None:
        return self.references.get((model, version))

    async def reference_digest(self, model: str, version: int) -> str | None:
        found = self.references.get((model, version))
        return None if found is None else found.digest

    async def version_state(self, session: Any, *, model: str, version: int) -> VersionState:
        return self.states.get((model, version)) or VersionState(model=model, version=version)

    async def save_state(self, session: Any, *, state: VersionState) -> None:
        self.states[(state.model, state.version)] = state

    async def add_drift_result(self, session: Any, **values: Any) -> None:
        self.drift_results.append(values)

    async def add_performance_result(self, session: Any, **values: Any) -> None:
        self.performance_results.append(values)

    async def add_report(self, session: Any, *, report_id: str, **values: Any) -> None:
        self.reports[report_id] = values

    async def drift_result(self, window_id: str) -> dict[str, Any] | None:
        return next((r for r in self.drift_results if r["window_id"] == window_id), None)

    async def attach_report(self, session: Any, *, window_id: str, report_id: str) -> None:
        for result in self.drift_results:
            if result["window_id"] == window_id:
                result["report_id"] = report_id


class FakeOutbox:
    """Collects the events the use cases publish."""

    def __init__(self) -> None:
        self.events: list[CloudEvent[Any]] = []

    async def add(self, session: Any, *events: CloudEvent[Any]) -> None:
        self.events.extend(events)


class FakeFiles:
    """Report HTML and kept windows in dicts."""

    def __init__(self) -> None:
        self.html: dict[str, str] = {}
        self.windows: dict[str, pd.DataFrame] = {}

    async def write_html(self, report_id: str, html: str) -> None:
        self.html[report_id] = html

    async def read_html(self, report_id: str) -> str | None:
        return self.html.get(report_id)

    def keep_window(self, version_key: str, window_id: str, data: pd.DataFrame) -> None:
        self.windows[window_id] = data

    def window(self, window_id: str) -> pd.DataFrame | None:
        return self.windows.get(window_id)


class FakeSource(ReferenceSource):
    """Serves reference data by model version; counts the fetches."""

    def __init__(self, data: dict[tuple[str, int], pd.DataFrame]) -> None:
        self.data = data
        self.fetched: list[tuple[str, int, str]] = []

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        self.fetched.append((model, version, run_id))
        found = self.data.get((model, version))
        return None if found is None else (found, f"fake://{model}/{version}")
