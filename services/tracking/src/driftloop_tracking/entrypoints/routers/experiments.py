"""MLflow's experiment endpoints (``/api/2.0/mlflow/experiments/...``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from driftloop_kit.auth import ADMIN, READER, WRITER
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_tracking.domain.model import LifecycleStage, Model, Tag
from driftloop_tracking.entrypoints.deps import ExperimentsDep

router = APIRouter(
    prefix="/api/2.0/mlflow/experiments",
    tags=["experiments"],
    default_response_class=MlflowJSONResponse,
)


class CreateExperiment(Model):
    name: str
    artifact_location: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class ExperimentId(Model):
    experiment_id: str


class UpdateExperiment(Model):
    experiment_id: str
    new_name: str


class SetExperimentTag(Model):
    experiment_id: str
    key: str
    value: str = ""


class DeleteExperimentTag(Model):
    experiment_id: str
    key: str


@router.post("/create", dependencies=[WRITER])
async def create_experiment(body: CreateExperiment, experiments: ExperimentsDep) -> dict[str, Any]:
    """Create an experiment; 409 RESOURCE_ALREADY_EXISTS if the name is taken."""
    experiment_id = await experiments.create(
        name=body.name, artifact_location=body.artifact_location, tags_=body.tags
    )
    return {"experiment_id": experiment_id}


@router.get("/get", dependencies=[READER])
async def get_experiment(experiment_id: str, experiments: ExperimentsDep) -> dict[str, Any]:
    """An experiment by id."""
    return {"experiment": await experiments.get(experiment_id)}


@router.get("/get-by-name", dependencies=[READER])
async def get_experiment_by_name(
    experiment_name: str, experiments: ExperimentsDep
) -> dict[str, Any]:
    """An experiment by name."""
    return {"experiment": await experiments.get_by_name(experiment_name)}


@router.post("/update", dependencies=[WRITER])
async def update_experiment(body: UpdateExperiment, experiments: ExperimentsDep) -> dict[str, Any]:
    """Rename an experiment."""
    await experiments.rename(experiment_id=body.experiment_id, new_name=body.new_name)
    return {}


@router.post("/delete", dependencies=[ADMIN])
async def delete_experiment(body: ExperimentId, experiments: ExperimentsDep) -> dict[str, Any]:
    """Soft-delete an experiment and its runs."""
    await experiments.set_lifecycle(experiment_id=body.experiment_id, stage=LifecycleStage.DELETED)
    return {}


@router.post("/restore", dependencies=[WRITER])
async def restore_experiment(body: ExperimentId, experiments: ExperimentsDep) -> dict[str, Any]:
    """Restore a deleted experiment and its runs."""
    await experiments.set_lifecycle(experiment_id=body.experiment_id, stage=LifecycleStage.ACTIVE)
    return {}


@router.post("/set-experiment-tag", dependencies=[WRITER])
async def set_experiment_tag(body: SetExperimentTag, experiments: ExperimentsDep) -> dict[str, Any]:
    """Set a tag on an experiment."""
    await experiments.set_tag(experiment_id=body.experiment_id, key=body.key, value=body.value)
    return {}


@router.post("/delete-experiment-tag", dependencies=[WRITER])
async def delete_experiment_tag(
    body: DeleteExperimentTag, experiments: ExperimentsDep
) -> dict[str, Any]:
    """Remove a tag from an experiment."""
    await experiments.delete_tag(experiment_id=body.experiment_id, key=body.key)
    return {}
