"""The registry service's routers, one per resource (MLflow's REST API paths)."""

from __future__ import annotations

from fastapi import APIRouter

from driftloop_registry.entrypoints.routers import (
    artifacts,
    lineage,
    model_versions,
    promotion,
    registered_models,
)

ROUTERS: tuple[APIRouter, ...] = (
    registered_models.router,
    model_versions.router,
    artifacts.router,
    lineage.router,
    promotion.router,
)
