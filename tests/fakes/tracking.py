"""Fakes of the tracking service's ports (``driftloop_tracking.service_layer.ports``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from driftloop_kit.errors import NotFound
from driftloop_tracking.domain.model import Run, RunInfo, RunStatus

#: The one run :class:`FakeRunLookup` knows.
RUN_ID = "a" * 32


class UnusableDatabase:
    """Fails the test if a request reaches the database: bad input must be refused first
    (a :class:`~driftloop_tracking.service_layer.ports.TransactionsPort`)."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        raise AssertionError("the request reached the database")

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise AssertionError("the request reached the database")


class FakeRunLookup:
    """Knows one run, whose artifacts live under ``1/<run_id>/artifacts``
    (a :class:`~driftloop_tracking.service_layer.ports.RunLookupPort`)."""

    async def get_run(self, run_id: str) -> Run:
        if run_id != RUN_ID:
            raise NotFound(f"Run with id={run_id} not found")
        info = RunInfo(
            run_id=RUN_ID,
            run_uuid=RUN_ID,
            experiment_id="1",
            status=RunStatus.RUNNING,
            start_time=0,
            artifact_uri=f"mlflow-artifacts:/1/{RUN_ID}/artifacts",
        )
        return Run(info=info)
