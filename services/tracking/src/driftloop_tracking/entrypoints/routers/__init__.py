"""The tracking service's routers, one per resource (MLflow's REST API paths)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.routing import BaseRoute

from driftloop_kit.fast_routes import FastRoute, body_route
from driftloop_tracking.entrypoints.deps import get_store
from driftloop_tracking.entrypoints.routers import (
    artifacts,
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
)

API = "/api/2.0/mlflow"


async def _get_run(request: Request) -> Response:
    query = request.query_params
    return await runs.get_run(
        store=await get_store(request),
        run_id=query.get("run_id", ""),
        run_uuid=query.get("run_uuid", ""),
    )


#: The calls a training loop makes most, as plain routes in front of the others
#: (see :mod:`driftloop_kit.fast_routes`): the same endpoint functions.
FAST_ROUTES: tuple[BaseRoute, ...] = (
    body_route(f"{API}/runs/log-metric", runs.log_metric, runs.LogMetric, get_store),
    body_route(f"{API}/runs/log-batch", runs.log_batch, runs.LogBatch, get_store),
    body_route(f"{API}/runs/log-parameter", runs.log_param, runs.LogParam, get_store),
    body_route(f"{API}/runs/set-tag", runs.set_tag, runs.SetTag, get_store),
    body_route(f"{API}/runs/create", runs.create_run, runs.CreateRun, get_store),
    body_route(f"{API}/runs/search", search.post_search_runs, search.SearchRuns, get_store),
    FastRoute(f"{API}/runs/get", _get_run, methods=["GET"]),
)
