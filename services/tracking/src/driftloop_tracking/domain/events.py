"""The events tracking publishes on ``tracking.runs``: ``run.created`` and ``run.finished``."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from driftloop.tracking.v1 import events_pb2 as tracking_events
from driftloop_tracking.domain.model import Run, RunStatus
from driftloop_tracking.domain.runs import DATASET_CONTEXT_TAG

__all__ = ["run_created", "run_finished"]


def run_created(run: Run) -> tracking_events.RunCreated:
    """The ``run.created`` payload."""
    info = run.info
    return tracking_events.RunCreated(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=info.run_name,
        user_id=info.user_id,
        status=_event_status(info.status),
        start_time=_timestamp(info.start_time),
        tags={t.key: t.value for t in run.data.tags},
        artifact_uri=info.artifact_uri,
    )


def run_finished(run: Run) -> tracking_events.RunFinished:
    """The ``run.finished`` payload: final status and everything logged."""
    info = run.info
    return tracking_events.RunFinished(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=info.run_name,
        user_id=info.user_id,
        status=_event_status(info.status),
        start_time=_timestamp(info.start_time),
        end_time=_timestamp(info.end_time),
        metrics={m.key: m.value for m in run.data.metrics},
        params={p.key: p.value for p in run.data.params},
        tags={t.key: t.value for t in run.data.tags},
        dataset_inputs=[
            tracking_events.DatasetInput(
                name=i.dataset.name,
                digest=i.dataset.digest,
                source_type=i.dataset.source_type,
                source=i.dataset.source,
                schema=i.dataset.schema_ or "",
                profile=i.dataset.profile or "",
                context=next((t.value for t in i.tags if t.key == DATASET_CONTEXT_TAG), ""),
            )
            for i in run.inputs.dataset_inputs
        ],
        artifact_uri=info.artifact_uri,
    )


def _event_status(status: RunStatus) -> Any:
    return tracking_events.RunStatus.Value(f"RUN_STATUS_{status.value}")


def _timestamp(ms: int | None) -> Timestamp | None:
    if ms is None:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp
