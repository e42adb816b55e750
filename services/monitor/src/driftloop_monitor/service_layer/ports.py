"""What the monitor's use cases need of the world, as protocols.

The real classes (:class:`~driftloop_monitor.adapters.store.MonitorStore`, the
:mod:`~driftloop_monitor.adapters.references` sources,
:class:`~driftloop_monitor.adapters.reports.ReportFiles`, the
:mod:`~driftloop_monitor.adapters.waiting` stores, the bus's outbox) and the test fakes
(``tests/fakes/monitor.py``, ``tests/fakes/common.py``) both fit them, checked by mypy.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.ports import OutboxPort
from driftloop_monitor.domain.drift import ReferenceSet
from driftloop_monitor.domain.drift_state import VersionState
from driftloop_monitor.domain.policy import MonitorPolicy

__all__ = [
    "MonitorStorePort",
    "OutboxPort",
    "ReferenceSourcePort",
    "ReportFilesPort",
    "WaitingPredictionsPort",
]


class MonitorStorePort(Protocol):
    """The monitor's tables, as the use cases read and write them.

    Writes that go with an event take the caller's session, so the change and the outbox
    row commit together.
    """

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction."""

    async def get_policy(self, model: str) -> MonitorPolicy | None:
        """The model's policy, or None."""

    async def put_policy(self, model: str, policy: MonitorPolicy) -> None:
        """Create or replace the model's policy."""

    async def put_reference(self, model: str, version: int, reference: ReferenceSet) -> None:
        """Create or replace the reference data of a model version."""

    async def get_reference(self, model: str, version: int) -> ReferenceSet | None:
        """The reference data of a model version, or None."""

    async def reference_digest(self, model: str, version: int) -> str | None:
        """The digest of a version's reference data (no data), or None."""

    async def version_state(
        self, session: AsyncSession, *, model: str, version: int
    ) -> VersionState:
        """The state of a model version (a fresh one when never seen)."""

    async def save_state(self, session: AsyncSession, *, state: VersionState) -> None:
        """Write a version's state back."""

    async def add_drift_result(self, session: AsyncSession, **values: Any) -> None:
        """Insert one window's drift result."""

    async def add_performance_result(self, session: AsyncSession, **values: Any) -> None:
        """Insert one performance window's result."""

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
        """Insert a report's JSON (its HTML is a file)."""

    async def drift_result(self, window_id: str) -> dict[str, Any] | None:
        """One window's drift result, or None."""

    async def attach_report(self, session: AsyncSession, *, window_id: str, report_id: str) -> None:
        """Point a drift result at a report made later (on request)."""

    async def decided(self, *, kind: str, window_id: str) -> bool:
        """Whether a ``drift`` or ``performance`` window's result is stored."""

    async def forget_window(self, session: AsyncSession, *, window_id: str) -> None:
        """Delete the stored rows of a decided window (drift or performance)."""


class ReferenceSourcePort(Protocol):
    """Finds the training sample of a model version that became champion."""

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        """The sample and where it came from, or None when there is none to fetch.

        Raises:
            Exception: When a location is known but reading it fails (the caller retries).
        """


class ReportFilesPort(Protocol):
    """HTML reports and the rows of recently decided windows."""

    async def write_html(self, report_id: str, html: str) -> None:
        """Store a report's HTML."""

    async def read_html(self, report_id: str) -> str | None:
        """A report's HTML, or None."""

    def keep_window(self, version_key: str, window_id: str, data: pd.DataFrame) -> None:
        """Keep a window's rows for a report on request later."""

    def window(self, window_id: str) -> pd.DataFrame | None:
        """A kept window's rows, or None when it is no longer kept."""


class WaitingPredictionsPort(Protocol):
    """Single-row predictions waiting for their label, by request id.

    Called on the stream's hot path: the methods are plain (not ``async``) calls.
    """

    def get(self, key: bytes) -> list[dict[str, Any]]:
        """The predictions waiting under request id ``key`` (empty when none): a new list,
        the caller may change it."""

    def put(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        """Store the predictions waiting under ``key``."""

    def drop(self, key: bytes) -> None:
        """Forget the predictions waiting under ``key``."""
