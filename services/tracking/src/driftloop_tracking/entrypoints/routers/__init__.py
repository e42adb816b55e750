"""The tracking service's routers, one per resource (MLflow's REST API paths)."""

from __future__ import annotations

from fastapi import APIRouter

from driftloop_tracking.entrypoints.routers import (
    artifacts,
    credentials,
    experiments,
    logged_models,
    runs,
    search,
)

ROUTERS: tuple[APIRouter, ...] = (
    experiments.router,
    runs.router,
    search.router,
    logged_models.router,
    artifacts.router,
    credentials.router,
)
