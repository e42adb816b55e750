"""FastAPI dependencies of the features routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.service_layer.labels import Labels
from driftloop_features.service_layer.materializations import Materializations


def get_gateway(request: Request) -> FeastGateway:
    """The Feast gateway built by ``bootstrap()``."""
    gateway: FeastGateway = request.app.state.gateway
    return gateway


def get_materializations(request: Request) -> Materializations:
    """The materialization use case built by ``bootstrap()``."""
    materializations: Materializations = request.app.state.materializations
    return materializations


def get_labels(request: Request) -> Labels:
    """The label store's use cases built by ``bootstrap()``."""
    labels: Labels = request.app.state.labels
    return labels


GatewayDep = Annotated[FeastGateway, Depends(get_gateway)]
MaterializationsDep = Annotated[Materializations, Depends(get_materializations)]
LabelsDep = Annotated[Labels, Depends(get_labels)]
