"""The console's HTTP app: ``create_app(settings)`` and its plug-in definition."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from driftloop_console.entrypoints.routers import ROUTERS
from driftloop_console.entrypoints.session import CookieCredential, LoginRoute, safe_next
from driftloop_console.entrypoints.templating import render
from driftloop_console.service_layer.bootstrap import bootstrap
from driftloop_console.settings import ConsoleSettings
from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.errors import DriftloopError, mlflow_error_body
from driftloop_kit.service import ServiceDefinition


def create_app(
    settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app; the upstream connection pool and the event feed open in its lifespan.

    Args:
        settings: The console's settings.
        transport: An httpx transport for the upstream calls (tests).
    """
    container = bootstrap(settings, transport=transport)
    resources: list[Resource] = [container.upstreams]
    checks: dict[str, Any] = {}
    if container.feed is not None:
        resources.append(container.feed)
    app = create_service_app(
        settings=settings,
        title="driftloop console",
        description=(
            "Web pages that show the loop: models and their aliases, drift, decisions, "
            "jobs, runs, lineage, and the events as they happen. It owns no data: it reads "
            "the other services' REST APIs with the viewer's credential and follows the "
            "event topics read-only."
        ),
        routers=ROUTERS,
        resources=resources,
        checks=checks,
        error_formatter=mlflow_error_body,
    )
    app.router.routes.append(LoginRoute())
    app.add_middleware(CookieCredential)
    app.add_exception_handler(DriftloopError, _error_page)
    app.state.container = container
    app.state.console = container.console
    app.state.feed = container.feed
    return app


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _error_page(request: Request, exc: Exception) -> Response:
    """A browser gets a page (the login form for a 401); any other client, JSON."""
    assert isinstance(exc, DriftloopError)
    if not _wants_html(request):
        return JSONResponse(dict(mlflow_error_body(exc)), status_code=exc.status_code)
    if exc.status_code == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.url.path == "/login":
            target = safe_next(request.query_params.get("next"))
        return render(
            request,
            "login.html",
            {"message": exc.message, "next": safe_next(target)},
            status_code=401,
        )
    return render(
        request,
        "error.html",
        {"status": exc.status_code, "message": exc.message},
        status_code=exc.status_code,
    )


SERVICE = ServiceDefinition(name="console", settings_cls=ConsoleSettings, create_app=create_app)
