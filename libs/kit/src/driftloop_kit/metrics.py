"""Prometheus metrics: per-request HTTP metrics and the ``/metrics`` endpoint.

Services create their own metrics with ``prometheus_client`` in its default
registry; ``/metrics`` exposes everything in that registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "UNMATCHED_ROUTE",
    "HttpMetrics",
    "MetricsMiddleware",
    "http_metrics",
    "metrics_router",
]

#: ``route`` label of requests that matched no route (kept as one value to bound cardinality).
UNMATCHED_ROUTE = "<unmatched>"


@dataclass(frozen=True)
class HttpMetrics:
    """The HTTP metrics shared by every app of the process."""

    requests: Counter
    duration: Histogram


@cache
def http_metrics() -> HttpMetrics:
    """Create (once per process) and return the HTTP metrics in the default registry."""
    return HttpMetrics(
        requests=Counter(
            "http_requests_total",
            "HTTP requests handled, by service, method, route template and status.",
            ["service", "method", "route", "status"],
        ),
        duration=Histogram(
            "http_request_duration_seconds",
            "Time to handle an HTTP request, by service, method and route template.",
            ["service", "method", "route"],
        ),
    )


def _route_template(scope: Scope) -> str:
    # The router stores the matched route in the scope; its template
    # ("/runs/{run_id}") keeps label values bounded, unlike the raw path.
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class MetricsMiddleware:
    """ASGI middleware recording ``http_requests_total`` and ``http_request_duration_seconds``.

    Args:
        app: The wrapped application.
        service: Value of the ``service`` label.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before answering
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics = http_metrics()
            method = scope.get("method", "")
            route = _route_template(scope)
            metrics.duration.labels(self.service, method, route).observe(
                time.perf_counter() - start
            )
            metrics.requests.labels(self.service, method, route, str(status)).inc()


def metrics_router() -> APIRouter:
    """Route ``GET /metrics`` in the Prometheus text format (default registry)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
