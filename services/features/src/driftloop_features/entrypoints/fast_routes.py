"""A speed shortcut past FastAPI: ``POST /get-online-features`` as a plain Starlette route.

What it replaces: FastAPI's route matching and dependency solving (``GatewayDep``) on
the one route every keyed prediction calls; for a 1-entity lookup they are a
measurable share of the request (bench/README.md has the profile). It calls the same
endpoint function as the FastAPI route with the body parsed by
:func:`driftloop_kit.fast_routes.json_body` (a bad body is the same 4xx) and the
gateway the app holds; the FastAPI route stays for the OpenAPI schema.
``tests/integration/features/test_features_http.py`` exercises the route through it.
"""

from __future__ import annotations

from fastapi import Request
from starlette.routing import BaseRoute

from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.entrypoints.routers.online import (
    GetOnlineFeaturesRequest,
    get_online_features,
)
from driftloop_kit.auth import Role
from driftloop_kit.fast_routes import body_route

__all__ = ["FAST_ROUTES"]


async def _gateway(request: Request) -> FeastGateway:
    gateway: FeastGateway = request.app.state.gateway
    return gateway


#: Matched before every other route of the app.
FAST_ROUTES: tuple[BaseRoute, ...] = (
    body_route(
        "/get-online-features",
        get_online_features,
        GetOnlineFeaturesRequest,
        _gateway,
        role=Role.READER,
    ),
)
