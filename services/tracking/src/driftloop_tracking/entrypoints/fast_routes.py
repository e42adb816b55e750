"""The calls a training loop makes most, as plain Starlette routes in front of FastAPI's.

What it replaces: for ``runs/log-metric``, ``log-batch``, ``log-parameter``,
``set-tag``, ``runs/create``, ``runs/search`` and ``runs/get``, FastAPI's routing
(it matches a request against its routes twice) and its dependency solving, which
are a measurable share of the CPU of an endpoint that answers in a fraction of a
millisecond (bench/README.md has the figures; ``bench/tracking.py`` measures them).

How: :func:`driftloop_kit.fast_routes.body_route` parses the body with the endpoint's
pydantic model and calls the same endpoint function as the FastAPI route, which stays
for the OpenAPI schema and the docs; a bad body is still a 400 naming the field. The
use cases behind them run on a Core connection, not an ORM session (see
:mod:`driftloop_tracking.service_layer.runs`).

It relies on Starlette's ``Route`` matching and on FastAPI putting the routes given
to ``create_service_app(fast_routes=...)`` first; ``tests/unit/tracking/
test_tracking_shortcuts.py`` pins the FastAPI and Starlette versions it was checked
against and checks that the fast routes answer before FastAPI's.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.routing import BaseRoute

from driftloop_kit.auth import Role
from driftloop_kit.fast_routes import FastRoute, body_route
from driftloop_tracking.entrypoints.deps import get_runs
from driftloop_tracking.entrypoints.routers import runs, search

__all__ = ["FAST_ROUTES"]

API = "/api/2.0/mlflow"


async def _get_run(request: Request) -> Response:
    query = request.query_params
    return await runs.get_run(
        runs=await get_runs(request),
        run_id=query.get("run_id", ""),
        run_uuid=query.get("run_uuid", ""),
    )


#: The same endpoint functions as the routers', matched first.
FAST_ROUTES: tuple[BaseRoute, ...] = (
    body_route(
        f"{API}/runs/log-metric", runs.log_metric, runs.LogMetric, get_runs, role=Role.WRITER
    ),
    body_route(f"{API}/runs/log-batch", runs.log_batch, runs.LogBatch, get_runs, role=Role.WRITER),
    body_route(
        f"{API}/runs/log-parameter", runs.log_param, runs.LogParam, get_runs, role=Role.WRITER
    ),
    body_route(f"{API}/runs/set-tag", runs.set_tag, runs.SetTag, get_runs, role=Role.WRITER),
    body_route(f"{API}/runs/create", runs.create_run, runs.CreateRun, get_runs, role=Role.WRITER),
    body_route(
        f"{API}/runs/search", search.post_search_runs, search.SearchRuns, get_runs, role=Role.READER
    ),
    FastRoute(f"{API}/runs/get", _get_run, role=Role.READER, methods=["GET"]),
)
