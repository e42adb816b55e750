"""A speed shortcut past FastAPI: the scoring routes as plain Starlette routes.

What it replaces: FastAPI's route matching (its router tries every route, then the
matched one again) and its dependency solving (``ScorerDep``), on the routes that
score, ``/v2/models/{name}[/versions/{version}]/infer`` and
``[/models/{name}]/invocations``. For a 1-row request they are a measurable share
of the CPU (bench/README.md has the figures).

Why it is safe: these routes call the same functions as the FastAPI routes
(:func:`~driftloop_serving.entrypoints.routers.v2.infer_request`,
:func:`~driftloop_serving.entrypoints.routers.mlflow_scoring.invocations_request`)
with the scorer the app holds; ``create_service_app(fast_routes=...)`` puts them in
front of the app's routes, and the FastAPI routes stay for the OpenAPI schema.
``tests/unit/serving/test_fast_routes.py`` pins the FastAPI and Starlette versions
they were checked against and checks that both answer the same.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.routing import BaseRoute

from driftloop_kit.auth import Role
from driftloop_kit.fast_routes import FastRoute
from driftloop_serving.entrypoints.routers.mlflow_scoring import invocations_request
from driftloop_serving.entrypoints.routers.v2 import infer_request

__all__ = ["FAST_ROUTES"]


async def _infer(request: Request) -> Response:
    params = request.path_params
    return await infer_request(
        request, request.app.state.scorer, params["name"], params.get("version")
    )


async def _invocations(request: Request) -> Response:
    name = request.path_params.get("name")
    if name is None:
        name = request.query_params.get("model")
    return await invocations_request(request, request.app.state.scorer, name)


#: The scoring routes, matched before every other route of the app.
FAST_ROUTES: tuple[BaseRoute, ...] = (
    FastRoute("/v2/models/{name}/infer", _infer, role=Role.READER, methods=["POST"]),
    FastRoute(
        "/v2/models/{name}/versions/{version}/infer", _infer, role=Role.READER, methods=["POST"]
    ),
    FastRoute("/invocations", _invocations, role=Role.READER, methods=["POST"]),
    FastRoute("/models/{name}/invocations", _invocations, role=Role.READER, methods=["POST"]),
)
