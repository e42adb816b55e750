"""The Feast repo of the deployment: what it defines, and applying it again."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from feast import Entity, FeatureService, FeatureView
from feast.data_source import DataSource, PushSource

from driftloop_features.entrypoints.deps import GatewayDep
from driftloop_kit.auth import DEPLOYER, READER
from driftloop_kit.errors import NotFound

router = APIRouter(prefix="/repo", tags=["repo"])


@router.get(
    "",
    summary="The repo: path, project, its feature_store.yaml and object counts",
    dependencies=[READER],
)
async def describe_repo(gateway: GatewayDep) -> dict[str, Any]:
    """Where the repo is, whose ``feature_store.yaml`` is served (the repo's own, with
    what the service overrode in it, or the one written from the settings) and how many
    objects of each kind it registered."""
    deployment = gateway.deployment
    return {
        "path": str(gateway.repo_path),
        "project": gateway.store.project,
        "feature_store_yaml": {
            "path": str(deployment.path),
            "owner": deployment.owner,
            "overrides": list(deployment.overrides),
        },
        "entities": len(gateway.entities()),
        "feature_views": len(gateway.feature_views()),
        "feature_services": len(gateway.feature_services()),
        "push_sources": sorted(gateway.push_schemas),
    }


@router.post(
    "/apply", summary="Apply the repo again (after editing its files)", dependencies=[DEPLOYER]
)
async def apply_repo(gateway: GatewayDep) -> dict[str, Any]:
    """Register what the repo's files define and delete what they no longer define."""
    summary = await asyncio.to_thread(gateway.apply)
    return {"applied": summary.applied, "deleted": summary.deleted}


@router.get("/entities", summary="Entities", dependencies=[READER])
async def list_entities(gateway: GatewayDep) -> dict[str, Any]:
    """Every entity of the project."""
    return {"entities": [_entity(e) for e in gateway.entities()]}


@router.get("/feature-views", summary="Feature views", dependencies=[READER])
async def list_feature_views(gateway: GatewayDep) -> dict[str, Any]:
    """Every feature view of the project."""
    return {"feature_views": [_feature_view(v) for v in gateway.feature_views()]}


@router.get("/feature-views/{name}", summary="One feature view", dependencies=[READER])
async def get_feature_view(name: str, gateway: GatewayDep) -> dict[str, Any]:
    """The feature view called ``name``."""
    for view in gateway.feature_views():
        if view.name == name:
            return _feature_view(view)
    raise NotFound(f"feature view {name!r} does not exist")


@router.get("/feature-services", summary="Feature services", dependencies=[READER])
async def list_feature_services(gateway: GatewayDep) -> dict[str, Any]:
    """Every feature service of the project."""
    return {"feature_services": [_feature_service(s) for s in gateway.feature_services()]}


@router.get("/data-sources", summary="Data sources, push sources included", dependencies=[READER])
async def list_data_sources(gateway: GatewayDep) -> dict[str, Any]:
    """Every data source of the project."""
    return {"data_sources": [_data_source(s) for s in gateway.data_sources()]}


def _entity(entity: Entity) -> dict[str, Any]:
    return {
        "name": entity.name,
        "join_key": entity.join_key,
        "value_type": entity.value_type.name,
        "description": entity.description,
        "tags": dict(entity.tags),
    }


def _feature_view(view: FeatureView) -> dict[str, Any]:
    return {
        "name": view.name,
        "entities": list(view.entities),
        "entity_columns": [_field(f) for f in view.entity_columns],
        "features": [_field(f) for f in view.features],
        "ttl_seconds": view.ttl.total_seconds() if view.ttl else None,
        "online": view.online,
        "batch_source": view.batch_source.name if view.batch_source else None,
        "stream_source": view.stream_source.name if view.stream_source else None,
        "description": view.description,
        "tags": dict(view.tags),
    }


def _feature_service(service: FeatureService) -> dict[str, Any]:
    return {
        "name": service.name,
        "features": [
            f"{projection.name_to_use()}:{feature.name}"  # type: ignore[no-untyped-call]
            for projection in service.feature_view_projections
            for feature in projection.features
        ],
        "description": service.description,
        "tags": dict(service.tags),
    }


def _data_source(source: DataSource) -> dict[str, Any]:
    found = {
        "name": source.name,
        "type": type(source).__name__,
        "timestamp_field": source.timestamp_field,
        "description": source.description,
    }
    if isinstance(source, PushSource) and source.batch_source is not None:
        found["batch_source"] = source.batch_source.name
    return found


def _field(field: Any) -> dict[str, str]:
    return {"name": field.name, "dtype": str(field.dtype)}
