"""FastAPI dependencies of the registry routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_registry.service_layer.aliases import Aliases
from driftloop_registry.service_layer.bootstrap import RegistryContainer
from driftloop_registry.service_layer.lineage import LineageQueries
from driftloop_registry.service_layer.models import RegisteredModels
from driftloop_registry.service_layer.registration import Registration
from driftloop_registry.service_layer.versions import ModelVersions


def get_container(request: Request) -> RegistryContainer:
    """The container built by ``create_app()``."""
    container: RegistryContainer = request.app.state.container
    return container


def get_registration(request: Request) -> Registration:
    """Registration of new versions."""
    return get_container(request).registration


def get_models(request: Request) -> RegisteredModels:
    """The registered models."""
    return get_container(request).models


def get_versions(request: Request) -> ModelVersions:
    """The model versions."""
    return get_container(request).versions


def get_aliases(request: Request) -> Aliases:
    """The aliases."""
    return get_container(request).aliases


def get_lineage(request: Request) -> LineageQueries:
    """The lineage log's queries."""
    return get_container(request).lineage


RegistrationDep = Annotated[Registration, Depends(get_registration)]
ModelsDep = Annotated[RegisteredModels, Depends(get_models)]
VersionsDep = Annotated[ModelVersions, Depends(get_versions)]
AliasesDep = Annotated[Aliases, Depends(get_aliases)]
LineageDep = Annotated[LineageQueries, Depends(get_lineage)]
