"""MLflow's model version endpoints (``/api/2.0/mlflow/model-versions/...``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from driftloop_kit.auth import DEPLOYER, READER, WRITER, CallerDep
from driftloop_kit.public_urls import PublicBaseUrlDep
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_registry.domain.model import Model, Tag
from driftloop_registry.domain.search import version_search
from driftloop_registry.entrypoints.deps import RegistrationDep, VersionsDep

router = APIRouter(
    prefix="/api/2.0/mlflow/model-versions",
    tags=["model-versions"],
    default_response_class=MlflowJSONResponse,
)


class CreateModelVersion(Model):
    name: str
    source: str
    run_id: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class VersionRef(Model):
    name: str
    version: str


class UpdateModelVersion(Model):
    name: str
    version: str
    description: str | None = None


class TransitionStage(Model):
    name: str
    version: str
    stage: str
    archive_existing_versions: bool = False


class SetVersionTag(Model):
    name: str
    version: str
    key: str
    value: str


class DeleteVersionTag(Model):
    name: str
    version: str
    key: str


@router.post("/create", dependencies=[WRITER])
async def create_model_version(
    body: CreateModelVersion, registration: RegistrationDep, caller: CallerDep
) -> dict[str, Any]:
    """Register a version: its files are copied and checksummed, its lineage recorded.

    ``source`` is what the mlflow client sends: ``models:/<model_id>``,
    ``runs:/<run_id>/<path>``, an ``mlflow-artifacts:`` URI of the tracking
    service, or ``models:/<name>/<version>`` to copy a registered version.
    """
    version = await registration.create_model_version(
        name=body.name,
        source=body.source,
        run_id=body.run_id,
        tags=body.tags,
        run_link=body.run_link,
        description=body.description,
        model_id=body.model_id,
        # Who registered it: the token's subject, never a name the body claims.
        user_id=caller.subject,
    )
    return {"model_version": version}


@router.get("/get", dependencies=[READER])
async def get_model_version(name: str, version: str, versions: VersionsDep) -> dict[str, Any]:
    """A version, with driftloop's ``lineage`` and ``files`` (path, size, SHA-256)."""
    return {"model_version": await versions.get(name, version)}


@router.patch("/update", dependencies=[WRITER])
async def update_model_version(body: UpdateModelVersion, versions: VersionsDep) -> dict[str, Any]:
    """Change a version's description."""
    version = await versions.update(
        name=body.name, version=body.version, description=body.description
    )
    return {"model_version": version}


@router.post("/transition-stage", dependencies=[DEPLOYER])
async def transition_stage(body: TransitionStage, versions: VersionsDep) -> dict[str, Any]:
    """Move a version to a legacy stage (kept for old clients; prefer aliases)."""
    version = await versions.transition_stage(
        name=body.name,
        version=body.version,
        stage=body.stage,
        archive_existing=body.archive_existing_versions,
    )
    return {"model_version": version}


@router.delete("/delete", dependencies=[DEPLOYER])
async def delete_model_version(body: VersionRef, versions: VersionsDep) -> dict[str, Any]:
    """Delete a version, its files and the aliases pointing to it."""
    await versions.delete(name=body.name, version=body.version)
    return {}


@router.get("/search", dependencies=[READER])
async def search(
    *,
    versions: VersionsDep,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: list[str] = Query(default_factory=list),  # noqa: B008 - FastAPI's idiom
    page_token: str | None = None,
) -> dict[str, Any]:
    """Versions matching a filter on name, run_id, source_path, version_number and tags."""
    request = version_search(
        filter_=filter, max_results=max_results, order_by=order_by, page_token=page_token
    )
    found, token = await versions.search(request)
    return {"model_versions": found, "next_page_token": token}


@router.get("/get-download-uri", dependencies=[READER])
async def get_download_uri(
    name: str, version: str, versions: VersionsDep, base_url: PublicBaseUrlDep
) -> dict[str, Any]:
    """Where the version's files are served, checked, by this registry, as the caller reached it."""
    return {"artifact_uri": await versions.download_uri(name, version, base_url=base_url)}


@router.post("/set-tag", dependencies=[WRITER])
async def set_model_version_tag(body: SetVersionTag, versions: VersionsDep) -> dict[str, Any]:
    """Set a tag on a version; publishes ``model_version.updated``."""
    await versions.set_tag(name=body.name, version=body.version, key=body.key, value=body.value)
    return {}


@router.delete("/delete-tag", dependencies=[WRITER])
async def delete_model_version_tag(body: DeleteVersionTag, versions: VersionsDep) -> dict[str, Any]:
    """Remove a tag from a version; publishes ``model_version.updated``."""
    await versions.delete_tag(name=body.name, version=body.version, key=body.key)
    return {}
