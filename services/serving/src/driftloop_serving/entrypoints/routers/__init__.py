"""The serving service's routers: KServe V2 and MLflow scoring."""

from __future__ import annotations

from fastapi import APIRouter

from driftloop_serving.entrypoints.routers import mlflow_scoring, v2

ROUTERS: tuple[APIRouter, ...] = (v2.router, mlflow_scoring.router)
