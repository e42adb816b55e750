"""MLflow 3's logged-model endpoints (``/api/2.0/mlflow/logged-models``) and ``runs/outputs``.

These are what ``mlflow.<flavor>.log_model(model, name=...)`` calls: create the
model, link it to the run, finalize it once its files are uploaded (to the
artifact proxy, under the model's ``artifact_uri``), and search by name to resolve
``runs:/<run_id>/<name>``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from driftloop_kit.artifacts import clean_path
from driftloop_kit.auth import ADMIN, READER, WRITER
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_tracking.domain.logged_models import (
    DatasetFilter,
    LoggedModelStatus,
    ModelOrderBy,
)
from driftloop_tracking.domain.model import Model, ModelOutput, Param, Tag
from driftloop_tracking.entrypoints.deps import ArtifactListingDep, LoggedModelsDep

router = APIRouter(
    prefix="/api/2.0/mlflow", tags=["logged_models"], default_response_class=MlflowJSONResponse
)


class CreateLoggedModel(Model):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[Param] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)


class FinalizeLoggedModel(Model):
    status: str | int


class SetLoggedModelTags(Model):
    tags: list[Tag] = Field(default_factory=list)


class LogLoggedModelParams(Model):
    params: list[Param] = Field(default_factory=list)


class SearchLoggedModels(Model):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    datasets: list[DatasetFilter] = Field(default_factory=list)
    max_results: int | None = None
    order_by: list[ModelOrderBy] = Field(default_factory=list)
    page_token: str | None = None


class LogOutputs(Model):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


@router.post("/logged-models", dependencies=[WRITER])
async def create_logged_model(body: CreateLoggedModel, models: LoggedModelsDep) -> dict[str, Any]:
    """Create a logged model (status ``PENDING``) in an active experiment."""
    model = await models.create(
        experiment_id=body.experiment_id,
        name=body.name or None,
        model_type=body.model_type,
        source_run_id=body.source_run_id or None,
        params=body.params,
        tags=body.tags,
    )
    return {"model": model}


@router.post("/logged-models/search", dependencies=[READER])
async def search_logged_models(body: SearchLoggedModels, models: LoggedModelsDep) -> dict[str, Any]:
    """Active models of the experiments matching a filter, ordered and paginated."""
    page, token = await models.search(
        experiment_ids=body.experiment_ids,
        filter_=body.filter,
        datasets=body.datasets,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    return {"models": page, "next_page_token": token}


@router.get("/logged-models/{model_id}", dependencies=[READER])
async def get_logged_model(
    model_id: str, models: LoggedModelsDep, allow_deleted: bool = False
) -> dict[str, Any]:
    """A logged model with its tags, params and metrics."""
    return {"model": await models.get(model_id, allow_deleted=allow_deleted)}


@router.patch("/logged-models/{model_id}", dependencies=[WRITER])
async def finalize_logged_model(
    model_id: str, body: FinalizeLoggedModel, models: LoggedModelsDep
) -> dict[str, Any]:
    """Set the upload status: ``READY`` (files uploaded) or ``FAILED``."""
    status = LoggedModelStatus.parse(body.status)
    return {"model": await models.finalize(model_id=model_id, status=status)}


@router.delete("/logged-models/{model_id}", dependencies=[ADMIN])
async def delete_logged_model(model_id: str, models: LoggedModelsDep) -> dict[str, Any]:
    """Soft-delete a logged model."""
    await models.delete(model_id)
    return {}


@router.patch("/logged-models/{model_id}/tags", dependencies=[WRITER])
async def set_logged_model_tags(
    model_id: str, body: SetLoggedModelTags, models: LoggedModelsDep
) -> dict[str, Any]:
    """Set (or overwrite) tags of a logged model."""
    return {"model": await models.set_tags(model_id=model_id, tags=body.tags)}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}", dependencies=[WRITER])
async def delete_logged_model_tag(
    model_id: str, tag_key: str, models: LoggedModelsDep
) -> dict[str, Any]:
    """Remove a tag of a logged model."""
    await models.delete_tag(model_id=model_id, key=tag_key)
    return {}


@router.post("/logged-models/{model_id}/params", dependencies=[WRITER])
async def log_logged_model_params(
    model_id: str, body: LogLoggedModelParams, models: LoggedModelsDep
) -> dict[str, Any]:
    """Log params of a logged model (the client sends them 100 at a time)."""
    await models.log_params(model_id=model_id, params=body.params)
    return {}


@router.get("/logged-models/{model_id}/artifacts/directories", dependencies=[READER])
async def list_logged_model_artifacts(
    model_id: str,
    models: LoggedModelsDep,
    listing: ArtifactListingDep,
    artifact_directory_path: str = "",
) -> dict[str, Any]:
    """The files of a logged model below a directory, named relative to the model's root."""
    relative = clean_path(artifact_directory_path)
    model = await models.get(model_id)
    root_uri = model.info.artifact_uri
    files = await listing.below(root_uri, relative, owner=f"logged model {model_id}")
    return {
        "root_uri": root_uri,
        "files": [
            {
                "path": posixpath.join(relative, f.path) if relative else f.path,
                "is_dir": f.is_dir,
                "file_size": f.file_size,
            }
            for f in files
        ],
    }


@router.post("/runs/outputs", dependencies=[WRITER])
async def log_outputs(body: LogOutputs, models: LoggedModelsDep) -> dict[str, Any]:
    """Record the logged models a run produced (``run.outputs.model_outputs``)."""
    await models.log_outputs(run_id=body.run_id, outputs=body.models)
    return {}
