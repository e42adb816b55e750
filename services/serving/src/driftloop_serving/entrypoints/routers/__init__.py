"""The serving service's routers: KServe V2 and MLflow scoring."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import BaseRoute

from driftloop_serving.entrypoints.routers import mlflow_scoring, v2

ROUTERS: tuple[APIRouter, ...] = (v2.router, mlflow_scoring.router)

#: The scoring routes as plain Starlette routes, matched before everything else.
FAST_ROUTES: tuple[BaseRoute, ...] = (*v2.FAST_ROUTES, *mlflow_scoring.FAST_ROUTES)
