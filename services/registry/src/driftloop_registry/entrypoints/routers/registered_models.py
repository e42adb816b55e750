"""MLflow's registered model endpoints (``/api/2.0/mlflow/registered-models/...``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from driftloop_kit.auth import ADMIN, DEPLOYER, READER, WRITER, CallerDep
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_registry.domain.model import EventRef, Model, Tag
from driftloop_registry.domain.search import model_search
from driftloop_registry.entrypoints.deps import AliasesDep, ModelsDep, VersionsDep

router = APIRouter(
    prefix="/api/2.0/mlflow/registered-models",
    tags=["registered-models"],
    default_response_class=MlflowJSONResponse,
)


class CreateRegisteredModel(Model):
    name: str
    tags: list[Tag] = Field(default_factory=list)
    description: str | None = None


class Name(Model):
    name: str


class RenameRegisteredModel(Model):
    name: str
    new_name: str


class UpdateRegisteredModel(Model):
    name: str
    description: str | None = None


class SetTag(Model):
    name: str
    key: str
    value: str


class DeleteTag(Model):
    name: str
    key: str


class GetLatestVersions(Model):
    name: str
    stages: list[str] = Field(default_factory=list)


class SetAlias(Model):
    name: str
    alias: str
    version: str
    cause: EventRef | None = Field(
        default=None,
        description="driftloop: the event that caused the move (e.g. a training.completed).",
    )


class DeleteAlias(Model):
    name: str
    alias: str


@router.post("/create", dependencies=[WRITER])
async def create_registered_model(body: CreateRegisteredModel, models: ModelsDep) -> dict[str, Any]:
    """Register a model name; 409 ``RESOURCE_ALREADY_EXISTS`` if it is taken."""
    model = await models.create(name=body.name, tags=body.tags, description=body.description)
    return {"registered_model": model}


@router.get("/get", dependencies=[READER])
async def get_registered_model(name: str, models: ModelsDep) -> dict[str, Any]:
    """A registered model with its tags, aliases and latest versions."""
    return {"registered_model": await models.get(name)}


@router.post("/rename", dependencies=[DEPLOYER])
async def rename_registered_model(body: RenameRegisteredModel, models: ModelsDep) -> dict[str, Any]:
    """Rename a model; its versions and aliases follow."""
    model = await models.rename(name=body.name, new_name=body.new_name)
    return {"registered_model": model}


@router.patch("/update", dependencies=[WRITER])
async def update_registered_model(body: UpdateRegisteredModel, models: ModelsDep) -> dict[str, Any]:
    """Change a model's description."""
    model = await models.update(name=body.name, description=body.description)
    return {"registered_model": model}


@router.delete("/delete", dependencies=[ADMIN])
async def delete_registered_model(body: Name, models: ModelsDep) -> dict[str, Any]:
    """Delete a model, its versions, aliases and files."""
    await models.delete(body.name)
    return {}


@router.get("/search", dependencies=[READER])
async def search(
    *,
    models: ModelsDep,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: list[str] = Query(default_factory=list),  # noqa: B008 - FastAPI's idiom
    page_token: str | None = None,
) -> dict[str, Any]:
    """Registered models matching a filter on ``name`` and ``tags.*``, one page at a time."""
    request = model_search(
        filter_=filter, max_results=max_results, order_by=order_by, page_token=page_token
    )
    found, token = await models.search(request)
    return {"registered_models": found, "next_page_token": token}


@router.post("/get-latest-versions", dependencies=[READER])
async def get_latest_versions(body: GetLatestVersions, models: ModelsDep) -> dict[str, Any]:
    """The newest version per stage (legacy stages API)."""
    return {"model_versions": await models.latest_versions(body.name, body.stages)}


@router.get("/get-latest-versions", dependencies=[READER])
async def get_latest_versions_by_query(
    *,
    models: ModelsDep,
    name: str,
    stages: list[str] = Query(default_factory=list),  # noqa: B008 - FastAPI's idiom
) -> dict[str, Any]:
    """The same, with query parameters."""
    return {"model_versions": await models.latest_versions(name, stages)}


@router.post("/set-tag", dependencies=[WRITER])
async def set_registered_model_tag(body: SetTag, models: ModelsDep) -> dict[str, Any]:
    """Set a tag on a registered model."""
    await models.set_tag(name=body.name, key=body.key, value=body.value)
    return {}


@router.delete("/delete-tag", dependencies=[WRITER])
async def delete_registered_model_tag(body: DeleteTag, models: ModelsDep) -> dict[str, Any]:
    """Remove a tag from a registered model."""
    await models.delete_tag(name=body.name, key=body.key)
    return {}


@router.post("/alias", dependencies=[DEPLOYER])
async def set_alias(body: SetAlias, aliases: AliasesDep, caller: CallerDep) -> dict[str, Any]:
    """Point an alias at a version; publishes ``alias.set`` with the previous version."""
    # The event's user_id is the token's subject: who moved it, not who says so.
    await aliases.set(
        name=body.name,
        alias=body.alias,
        version=body.version,
        cause=body.cause,
        user_id=caller.subject,
    )
    return {}


@router.delete("/alias", dependencies=[DEPLOYER])
async def delete_alias(body: DeleteAlias, aliases: AliasesDep, caller: CallerDep) -> dict[str, Any]:
    """Delete an alias; publishes ``alias.deleted``."""
    await aliases.delete(name=body.name, alias=body.alias, user_id=caller.subject)
    return {}


@router.get("/alias", dependencies=[READER])
async def get_model_version_by_alias(
    name: str, alias: str, versions: VersionsDep
) -> dict[str, Any]:
    """The version an alias points to."""
    return {"model_version": await versions.by_alias(name, alias)}
