"""What the use cases need of the world, as protocols.

The real classes (:class:`~driftloop_features.adapters.feast_store.FeastGateway`,
:class:`~driftloop_kit.db.Database`, the bus's outbox and dead letters) and the test
fakes (``tests/fakes/features.py``, ``tests/fakes/common.py``) both fit them, checked
by mypy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.ports import DeadLetterPort, OutboxPort
from driftloop_features.domain.rows import PushSourceSchema

__all__ = ["DeadLetterPort", "FeatureStorePort", "OutboxPort", "SessionsPort"]


class FeatureStorePort(Protocol):
    """The deployment's Feast store, as ingestion and materialization see it.

    Every method blocks (Feast does); the use cases call them in a worker thread.
    """

    @property
    def push_schemas(self) -> Mapping[str, PushSourceSchema]:
        """What rows of each push source must look like."""

    def refresh(self) -> None:
        """Re-read the registry and the push schemas (another replica applied)."""

    def write_online_rows(self, push_source_name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write validated rows to the online store of the push source's views."""

    def push(self, push_source_name: str, df: pd.DataFrame, to: str) -> None:
        """Push ``df`` to ``push_source_name`` (``online``, ``offline`` or both)."""

    def materializable(self, feature_views: list[str] | None) -> list[str]:
        """The views a materialization of ``feature_views`` (None: all) would load."""

    def materialize(
        self, start: datetime, end: datetime, feature_views: list[str] | None
    ) -> dict[str, int]:
        """Materialize ``[start, end)``; rows written per feature view."""

    def materialize_incremental(
        self, end: datetime, feature_views: list[str] | None
    ) -> dict[str, tuple[datetime | None, int]]:
        """Materialize each view from where it stopped; (start, rows) per feature view."""


class SessionsPort(Protocol):
    """Opens database transactions (the outbox is written in one)."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
