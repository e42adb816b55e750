"""The app factory every service uses, so they all have the same shape.

A service's ``create_app(settings)`` builds its clients (without connecting) and
hands them over::

    def create_app(settings: TrackingSettings) -> FastAPI:
        database = Database(settings.database_url)
        producer = BusProducer(settings.kafka_bootstrap_servers)
        return create_service_app(
            settings=settings,
            title="driftloop tracking",
            routers=[runs.router, experiments.router],
            resources=[producer],
            checks={"kafka": producer.ping},
            database=database,
        )

The lifespan then starts the resources in order and stops them in reverse, and
the app has ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, ``/docs``,
JSON errors and request metrics. Every other route must declare the role it needs
(:mod:`driftloop_kit.auth`); an app with a route that does not is refused.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import BaseRoute

from driftloop_kit import tracing
from driftloop_kit.auth import (
    Authenticator,
    CredentialsClient,
    CredentialSource,
    RevocationFeed,
    Role,
    ServiceAuth,
    check_routes,
)
from driftloop_kit.db import Database
from driftloop_kit.errors import ErrorFormatter, install_error_handlers, mlflow_error_body
from driftloop_kit.health import DEFAULT_CHECK_TIMEOUT, Check, Readiness, health_router
from driftloop_kit.heap import freeze_heap
from driftloop_kit.limits import BodyLimitMiddleware
from driftloop_kit.metrics import MetricsMiddleware, metrics_router
from driftloop_kit.settings import ServiceSettings

__all__ = ["Hook", "Resource", "create_service_app", "get_database", "get_readiness"]


@runtime_checkable
class Resource(Protocol):
    """Anything with an async lifecycle: a Kafka producer, a consumer loop, an HTTP client."""

    async def start(self) -> None:
        """Connect or spawn; raise if that is impossible."""

    async def stop(self) -> None:
        """Release everything :meth:`start` acquired."""


#: A start-up or shut-down hook; receives the app.
Hook = Callable[[FastAPI], Awaitable[None]]


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    routers: Sequence[APIRouter] = (),
    resources: Sequence[Resource] = (),
    checks: Mapping[str, Check] | None = None,
    database: Database | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    error_formatter: ErrorFormatter = mlflow_error_body,
    error_formats: Mapping[str, ErrorFormatter] | None = None,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    fast_routes: Sequence[BaseRoute] = (),
    unbounded_paths: Sequence[str] = (),
    credentials: CredentialSource | None = None,
) -> FastAPI:
    """Build a service's FastAPI app. Nothing is opened until the lifespan starts.

    Start-up, in order: each resource's ``start()``, then each ``on_startup``
    hook, then the objects alive are frozen for the GC (see :func:`_freeze_heap`).
    Shut-down, in reverse: the heap is unfrozen, then ``on_shutdown`` hooks,
    resources' ``stop()``, then the database is disposed. If start-up fails
    half-way, what was started is stopped again.

    Args:
        settings: The service's settings, kept in ``app.state.settings``.
        title: OpenAPI title.
        version: OpenAPI version of the service's API.
        description: OpenAPI description (Markdown).
        routers: The service's routers.
        resources: Started in order, stopped in reverse.
        checks: Readiness checks by name; a ``database`` check is added when a
            database is given. More can be added later via ``app.state.readiness``.
        database: The service's database, in ``app.state.database``; disposed last.
        on_startup: Hooks run after the resources have started (e.g. migrations).
        on_shutdown: Hooks run before the resources stop.
        error_formatter: Builds error bodies; MLflow's format by default.
        error_formats: Other formatters by path prefix (a second protocol's routes).
        check_timeout: Seconds each readiness check may take.
        fast_routes: Plain Starlette routes matched before every other route: the
            hottest endpoints without FastAPI's routing and dependency solving (see
            :mod:`driftloop_kit.fast_routes`). Their FastAPI routes stay in
            ``routers``, for the OpenAPI schema.
        unbounded_paths: Path prefixes exempt from the body limit
            (``settings.max_body_bytes``): uploads streamed to disk.
        credentials: Where revoked tokens and stored users are read; by default the
            tracking service's routes at ``settings.auth_url`` (tracking passes its
            own tables).

    Returns:
        The application.
    """
    readiness = Readiness(timeout=check_timeout)
    if database is not None:
        readiness.add("database", database.ping)
    for name, check in (checks or {}).items():
        readiness.add(name, check)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if database is not None:
                stack.push_async_callback(database.dispose)
            check_routes(app.routes)  # routes added after the factory ran too
            for resource in resources:
                await resource.start()
                stack.push_async_callback(resource.stop)
            for hook in on_startup:
                await hook(app)
            for hook in reversed(on_shutdown):
                stack.push_async_callback(hook, app)
            _freeze_heap(stack)
            yield

    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    tracing.set_up(settings.service_name, settings.otlp_endpoint)
    tracing.instrument_app(app)
    app.state.settings = settings
    app.state.database = database
    app.state.readiness = readiness
    authenticator = Authenticator.from_settings(settings)
    app.state.authenticator = authenticator
    if authenticator.enabled:
        # Revoked tokens and stored users live in the tracking service.
        source = credentials or CredentialsClient(
            settings.auth_url, ServiceAuth.for_service(settings, Role.READER)
        )
        authenticator.password_check = source.check_password
        feed = RevocationFeed(authenticator, source, every=settings.auth_refresh_seconds)
        resources = [*resources, feed]

    install_error_handlers(app, formatter=error_formatter, formats=error_formats)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=tuple(unbounded_paths)
    )
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    if list(settings.allowed_hosts) != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
    # Added last, so outermost: it also counts the 500s made by the error middleware.
    app.add_middleware(MetricsMiddleware, service=settings.service_name)

    app.include_router(health_router(readiness))
    app.include_router(metrics_router())
    for router in routers:
        app.include_router(router)
    app.router.routes[0:0] = fast_routes
    check_routes(app.routes)
    return app


def _freeze_heap(stack: AsyncExitStack) -> None:
    """Move the objects alive once the app has started to the GC's permanent generation
    (:func:`~driftloop_kit.heap.freeze_heap`); back at shut-down."""
    freeze_heap()
    stack.callback(gc.unfreeze)


def get_database(request: Request) -> Database:
    """FastAPI dependency: the app's :class:`Database`.

    Raises:
        RuntimeError: If the app was built without a database.
    """
    database = request.app.state.database
    if not isinstance(database, Database):
        raise RuntimeError("this app has no database")
    return database


def get_readiness(request: Request) -> Readiness:
    """FastAPI dependency: the app's :class:`~driftloop_kit.health.Readiness`."""
    readiness = request.app.state.readiness
    assert isinstance(readiness, Readiness)
    return readiness
