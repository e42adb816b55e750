"""A version's lineage, read from its source run and its tags.

The metrics, params and dataset inputs come from the run as tracking returns it.
What tracking cannot know is carried in tags, on the run (set by the training
job) or on the version (set at registration), the version's winning:

- ``driftloop.feature_views``: comma-separated feature views the model was trained on;
- ``driftloop.trigger.event_id`` / ``.event_type`` / ``.event_source``: the event
  that started the retraining;
- ``driftloop.training_job_id``: the trainer job;
- ``driftloop.reference_data``: where the sample of training inputs is (for drift).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from driftloop_registry.domain.model import DatasetRef, EventRef, Lineage

FEATURE_VIEWS_TAG = "driftloop.feature_views"
TRIGGER_ID_TAG = "driftloop.trigger.event_id"
TRIGGER_TYPE_TAG = "driftloop.trigger.event_type"
TRIGGER_SOURCE_TAG = "driftloop.trigger.event_source"
TRAINING_JOB_TAG = "driftloop.training_job_id"
REFERENCE_DATA_TAG = "driftloop.reference_data"
DATASET_CONTEXT_TAG = "mlflow.data.context"


def _pairs(items: Any) -> dict[str, Any]:
    return {str(item["key"]): item.get("value", "") for item in items or ()}


def _metric(value: Any) -> float:
    if isinstance(value, str):  # proto3 JSON spells non-finite numbers as strings
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return float(value)


def build_lineage(run: Mapping[str, Any] | None, version_tags: Mapping[str, str]) -> Lineage:
    """The lineage of a version made from ``run`` (tracking's ``runs/get`` shape).

    Args:
        run: The source run, or ``None`` when the version names no run.
        version_tags: The version's tags; they override the run's ``driftloop.*`` tags.
    """
    tags: dict[str, str] = {}
    lineage = Lineage()
    if run is not None:
        info, data = run.get("info", {}), run.get("data", {})
        tags = {k: str(v) for k, v in _pairs(data.get("tags")).items()}
        lineage.run_id = str(info.get("run_id", ""))
        lineage.experiment_id = str(info.get("experiment_id", ""))
        lineage.metrics = {k: _metric(v) for k, v in _pairs(data.get("metrics")).items()}
        lineage.params = {k: str(v) for k, v in _pairs(data.get("params")).items()}
        for item in (run.get("inputs") or {}).get("dataset_inputs", []):
            dataset = item.get("dataset", {})
            lineage.datasets.append(
                DatasetRef(
                    name=dataset.get("name", ""),
                    digest=dataset.get("digest", ""),
                    source_type=dataset.get("source_type", ""),
                    source=dataset.get("source", ""),
                    context=str(_pairs(item.get("tags")).get(DATASET_CONTEXT_TAG, "")),
                )
            )
    tags.update(version_tags)
    views = tags.get(FEATURE_VIEWS_TAG, "")
    lineage.feature_views = [view.strip() for view in views.split(",") if view.strip()]
    if event_id := tags.get(TRIGGER_ID_TAG):
        lineage.triggering_event = EventRef(
            id=event_id,
            type=tags.get(TRIGGER_TYPE_TAG, ""),
            source=tags.get(TRIGGER_SOURCE_TAG, ""),
        )
    lineage.training_job_id = tags.get(TRAINING_JOB_TAG, "")
    lineage.reference_data = tags.get(REFERENCE_DATA_TAG, "")
    return lineage
