"""The serving service's HTTP app: ``create_app(settings)`` and its plug-in definition.

``create_app`` only wires: :func:`~driftloop_serving.service_layer.bootstrap.bootstrap`
builds the dependencies, the routers (and their fast routes) answer requests, the V2
gRPC server (:mod:`driftloop_serving.entrypoints.grpc_v2`, on its own port) answers
with the same scorer, and the alias consumer
(:mod:`driftloop_serving.entrypoints.consumers`) keeps the served models in step with
the registry.
"""

from __future__ import annotations

from fastapi import FastAPI

from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.publisher import Publisher
from driftloop_kit.app import create_service_app
from driftloop_kit.errors import Unavailable
from driftloop_kit.health import Check
from driftloop_kit.service import ServiceDefinition
from driftloop_serving.entrypoints.consumers import (
    DECLARATION_HANDLERS,
    HANDLERS,
    CatchUp,
    alias_consumer,
    declarations_consumer,
)
from driftloop_serving.entrypoints.fast_routes import FAST_ROUTES
from driftloop_serving.entrypoints.grpc_v2 import GrpcServer
from driftloop_serving.entrypoints.routers import ROUTERS
from driftloop_serving.entrypoints.routers.v2 import v2_error_body
from driftloop_serving.service_layer.bootstrap import bootstrap
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.models import ModelManager
from driftloop_serving.settings import ServingSettings


class _Stopping:
    """Stops a publisher (which connects on first use) when the app stops."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        await self.publisher.stop()


def _models_loaded(
    settings: ServingSettings, models: ModelManager, catalog: Catalog, documents: ConsumerRunner
) -> Check:
    """Ready when the model documents are read (``trainer.models`` up to where it was at
    start: a restarted serving knows no model before) and every served model has its
    champion loaded (the errors say why not)."""

    async def check() -> None:
        if not documents.caught_up:
            raise Unavailable("the model documents (trainer.models) are not read yet")
        missing = [
            f"{name}@{settings.alias}"
            for name in catalog.names()
            if models.get(name, settings.alias) is None
        ]
        if missing:
            errors = "; ".join(f"{n}@{a}: {e}" for (n, a), e in models.errors.items())
            raise Unavailable(
                f"not loaded: {', '.join(missing)}" + (f" ({errors})" if errors else "")
            )

    return check


def create_app(settings: ServingSettings) -> FastAPI:
    """Build the app; models load and the broker connects in its lifespan."""
    container = bootstrap(settings)
    models = container.models
    consumer = alias_consumer(container)
    documents = declarations_consumer(container)
    catch_up = CatchUp(consumer, models)
    # Started once the models and the consumers are, stopped before them.
    grpc_server = GrpcServer(settings, container.scorer) if settings.grpc_enabled else None
    app = create_service_app(
        settings=settings,
        title="driftloop serving",
        description=(
            "Serves registered models by alias over KServe's V2 inference protocol "
            "(`/v2/models/{name}/infer`) and MLflow's scoring protocol (`/invocations`). "
            "Swaps versions without dropping requests when `alias.set` arrives; logs "
            "every prediction to the `predictions` topic."
        ),
        routers=ROUTERS,
        resources=[
            container.registry,
            container.features,
            container.predictions,
            models,
            _Stopping(container.dead_letters),
            consumer,
            documents,
            catch_up,
        ],
        checks={"models": _models_loaded(settings, models, container.catalog, documents)},
        fast_routes=FAST_ROUTES,
        on_startup=[grpc_server.start] if grpc_server else [],
        on_shutdown=[grpc_server.stop] if grpc_server else [],
        # The V2 protocol's routes answer its own error body, a denial included.
        error_formats={"/v2/": v2_error_body},
    )
    app.state.readiness.add_details(
        "models",
        lambda: {
            **{f"{n}@{a}": f"version {m.version}" for (n, a), m in models.served.items()},
            **{f"{n}@{a} load failure": e for (n, a), e in models.errors.items()},
            "alias events": "following" if catch_up.following else "joining",
        },
    )
    app.state.scorer = container.scorer
    app.state.models = models
    app.state.predictions = container.predictions
    return app


SERVICE = ServiceDefinition(
    name="serving",
    settings_cls=ServingSettings,
    create_app=create_app,
    handlers={**HANDLERS, **DECLARATION_HANDLERS},
)
