"""Metrics: request counters by route template, and /metrics exposing the default registry."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter

from driftloop_kit.auth import READER
from driftloop_kit.errors import install_error_handlers
from driftloop_kit.metrics import UNMATCHED_ROUTE, MetricsMiddleware, metrics_router
from driftloop_kit.testing import app_client, authenticator

pytestmark = pytest.mark.unit


def build_app(service: str) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = authenticator()
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, service=service)
    app.include_router(metrics_router())

    @app.get("/runs/{run_id}", dependencies=[READER])
    async def get_run(run_id: str) -> dict[str, str]:
        return {"run_id": run_id}

    @app.get("/bug", dependencies=[READER])
    async def bug() -> None:
        raise RuntimeError("boom")

    return app


def requests_total(service: str, route: str, status: str, method: str = "GET") -> float:
    labels = {"service": service, "method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template_not_raw_path() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"

    async with app_client(build_app(service), lifespan=False) as client:
        await client.get("/runs/a1")
        await client.get("/runs/b2")
        exposed = (await client.get("/metrics")).text

    assert requests_total(service, "/runs/{run_id}", "200") == 2.0
    assert f'route="/runs/{{run_id}}",service="{service}",status="200"}} 2.0' in exposed
    assert "/runs/a1" not in exposed
    duration_count = REGISTRY.get_sample_value(
        "http_request_duration_seconds_count",
        {"service": service, "method": "GET", "route": "/runs/{run_id}"},
    )
    assert duration_count == 2.0


async def test_unmatched_paths_share_one_label_value() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"

    async with app_client(build_app(service), lifespan=False) as client:
        await client.get("/nope/1")
        await client.get("/nope/2")

    assert requests_total(service, UNMATCHED_ROUTE, "404") == 2.0


async def test_unhandled_errors_are_counted_as_500() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"

    async with app_client(build_app(service), lifespan=False) as client:
        response = await client.get("/bug")

    assert response.status_code == 500
    assert requests_total(service, "/bug", "500") == 1.0


async def test_metrics_endpoint_exposes_metrics_created_by_other_code() -> None:
    name = f"kit_test_widgets_{uuid.uuid4().hex[:8]}"
    widgets = Counter(name, "Widgets made in a test.")
    widgets.inc(3)
    try:
        async with app_client(build_app("svc"), lifespan=False) as client:
            response = await client.get("/metrics")
    finally:
        REGISTRY.unregister(widgets)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert f"{name}_total 3.0" in response.text
