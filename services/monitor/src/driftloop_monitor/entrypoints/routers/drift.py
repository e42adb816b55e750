"""Drift and performance history per model and version, and each version's counters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from driftloop_kit.auth import READER
from driftloop_monitor.entrypoints.deps import MonitorDep, StoreDep

router = APIRouter(prefix="/models", tags=["drift"])

#: Versions are 64-bit integers in the database: a larger one is a 422, not a 500.
Version = Annotated[int, Path(ge=1, le=2**63 - 1, description="Model version, e.g. 3.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most results returned.")]


class DriftResultOut(BaseModel):
    """One closed window of a model version."""

    id: int
    model_name: str
    version: int
    run_id: str
    window_id: str
    start_time: datetime
    end_time: datetime
    rows: int
    status: str = Field(description='"tested", "drift", "no_reference" or "too_small".')
    drift_share: float
    dataset_drift_threshold: float
    dataset_drift: bool
    columns: list[dict[str, Any]] = Field(
        description="Per tested column: stattest, score, threshold, drifted."
    )
    skipped: dict[str, str] = Field(description="Watched columns not tested, with the reason.")
    reference_digest: str
    report_id: str | None
    event_type: str | None = Field(description="drift.detected / drift.cleared, when sent.")
    event_id: str | None


class PerformanceResultOut(BaseModel):
    """One performance window of a model version."""

    id: int
    model_name: str
    version: int
    run_id: str
    window_id: str
    start_time: datetime
    end_time: datetime
    rows: int
    metric: str
    value: float
    threshold: float
    degraded: bool
    report_id: str | None
    event_id: str | None


class VersionStatus(BaseModel):
    """Counters of a model version, including predictions that had no reference data."""

    model_name: str
    version: int
    drifted: bool
    windows: int
    rows: int
    unreferenced_rows: int = Field(description="Rows of windows closed without reference data.")
    unreferenced_windows: int
    labelled_rows: int
    open_window_rows: int = Field(description="Rows waiting in the open window (this process).")
    has_reference: bool


@router.get(
    "/{model_name}/drift", summary="Drift history of a model, newest first", dependencies=[READER]
)
async def model_drift(
    *,
    model_name: str,
    store: StoreDep,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Limit = 100,
    before_id: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Page: results older than this id.")
    ] = None,
    only_drift: bool = False,
) -> list[DriftResultOut]:
    rows = await store.drift_history(
        model=model_name, version=version, limit=limit, before_id=before_id, only_drift=only_drift
    )
    return [DriftResultOut.model_validate(r) for r in rows]


@router.get(
    "/{model_name}/versions/{version}/drift",
    summary="Drift history of one version",
    dependencies=[READER],
)
async def version_drift(
    model_name: str, version: Version, store: StoreDep, limit: Limit = 100
) -> list[DriftResultOut]:
    rows = await store.drift_history(model=model_name, version=version, limit=limit)
    return [DriftResultOut.model_validate(r) for r in rows]


@router.get(
    "/{model_name}/performance", summary="Performance history of a model", dependencies=[READER]
)
async def model_performance(
    model_name: str,
    store: StoreDep,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Limit = 100,
) -> list[PerformanceResultOut]:
    rows = await store.performance_history(model=model_name, version=version, limit=limit)
    return [PerformanceResultOut.model_validate(r) for r in rows]


@router.get(
    "/{model_name}/versions",
    summary="Counters of every version the monitor has seen",
    dependencies=[READER],
)
async def versions(model_name: str, store: StoreDep, monitor: MonitorDep) -> list[VersionStatus]:
    states = await store.list_states(model_name)
    referenced = {i.version for i in await store.list_references(model_name)}
    open_rows = monitor.open_windows()
    return [
        VersionStatus(
            **s.as_dict(),
            open_window_rows=open_rows.get(f"{model_name}/{s.version}", 0),
            has_reference=s.version in referenced,
        )
        for s in states
    ]
