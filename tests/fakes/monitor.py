"""Fakes of the monitor's ports (``driftloop_monitor.service_layer.ports``).

The outbox is :class:`tests.fakes.common.FakeOutbox`; predictions wait for labels in the
real :class:`~driftloop_monitor.adapters.waiting.MemoryWaiting` (the ``bus`` engine's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_monitor.adapters.waiting import MemoryWaiting
from driftloop_monitor.domain.drift import ReferenceSet
from driftloop_monitor.domain.drift_state import VersionState
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.service_layer.monitor import Monitor
from tests.fakes.common import FakeDatabase, FakeOutbox


class FakeStore:
    """The monitor's tables (a ``MonitorStorePort``) in dicts."""

    def __init__(self) -> None:
        self.policies: dict[str, MonitorPolicy] = {}
        self.references: dict[tuple[str, int], ReferenceSet] = {}
        self.states: dict[tuple[str, int], VersionState] = {}
        self.drift_results: list[dict[str, Any]] = []
        self.performance_results: list[dict[str, Any]] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.forgotten: list[str] = []
        self._database = FakeDatabase()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._database.session() as session:
            yield session

    async def get_policy(self, model: str) -> MonitorPolicy | None:
        return self.policies.get(model)

    async def put_policy(self, model: str, policy: MonitorPolicy) -> None:
        self.policies[model] = policy

    async def put_reference(self, model: str, version: int, reference: ReferenceSet) -> None:
        self.references[(model, version)] = reference

    async def get_reference(self, model: str, version: int) -> ReferenceSet | None:
        return self.references.get((model, version))

    async def reference_digest(self, model: str, version: int) -> str | None:
        found = self.references.get((model, version))
        return None if found is None else found.digest

    async def version_state(
        self, session: AsyncSession, *, model: str, version: int
    ) -> VersionState:
        return self.states.get((model, version)) or VersionState(model=model, version=version)

    async def save_state(self, session: AsyncSession, *, state: VersionState) -> None:
        self.states[(state.model, state.version)] = state

    async def add_drift_result(self, session: AsyncSession, **values: Any) -> None:
        self.drift_results.append(values)

    async def add_performance_result(self, session: AsyncSession, **values: Any) -> None:
        self.performance_results.append(values)

    async def add_report(
        self,
        session: AsyncSession,
        *,
        report_id: str,
        kind: str,
        model: str,
        version: int,
        window_id: str,
        body: str,
        has_html: bool,
    ) -> None:
        self.reports[report_id] = {
            "kind": kind,
            "model": model,
            "version": version,
            "window_id": window_id,
            "body": body,
            "has_html": has_html,
        }

    async def drift_result(self, window_id: str) -> dict[str, Any] | None:
        return next((r for r in self.drift_results if r["window_id"] == window_id), None)

    async def attach_report(self, session: AsyncSession, *, window_id: str, report_id: str) -> None:
        for result in self.drift_results:
            if result["window_id"] == window_id:
                result["report_id"] = report_id

    async def decided(self, *, kind: str, window_id: str) -> bool:
        results = self.drift_results if kind == "drift" else self.performance_results
        return any(r["window_id"] == window_id for r in results)

    async def forget_window(self, session: AsyncSession, *, window_id: str) -> None:
        self.forgotten.append(window_id)


class FakeFiles:
    """Report HTML and kept windows in dicts (a ``ReportFilesPort``)."""

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


class FakeSource:
    """Serves reference data by model version (a ``ReferenceSourcePort``); counts fetches."""

    def __init__(self, data: dict[tuple[str, int], pd.DataFrame]) -> None:
        self.data = data
        self.fetched: list[tuple[str, int, str]] = []

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        self.fetched.append((model, version, run_id))
        found = self.data.get((model, version))
        return None if found is None else (found, f"fake://{model}/{version}")


def fake_monitor(
    *,
    store: FakeStore | None = None,
    outbox: FakeOutbox | None = None,
    files: FakeFiles | None = None,
    source: FakeSource | None = None,
    window_rows: int = 1000,
) -> Monitor:
    """The monitor's use cases over fakes; report links under ``http://monitor``."""
    return Monitor.wire(
        store=store or FakeStore(),
        outbox=outbox or FakeOutbox(),
        files=files or FakeFiles(),
        source=source or FakeSource({}),
        waiting=MemoryWaiting(),
        base_url="http://monitor",
        window_rows=window_rows,
    )
