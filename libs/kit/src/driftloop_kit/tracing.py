"""Tracing with OpenTelemetry, across HTTP and Kafka; off until an OTLP endpoint is set.

With ``otlp_endpoint`` set (``DRIFTLOOP_OTLP_ENDPOINT``, shared by every service), a
service sets up the OpenTelemetry SDK with an OTLP/HTTP exporter and its name as
``service.name`` (``driftloop-<service>``), and:

- its FastAPI routes (:func:`instrument_app`) and its httpx clients are instrumented
  with OpenTelemetry's own instrumentations: a call from one service to another is one
  trace, parent to child, through the W3C ``traceparent`` header;
- every event it makes carries the current span's context as CloudEvents' distributed
  tracing extension (``ce_traceparent``/``ce_tracestate``, :mod:`driftloop_events.tracing`);
- every event it consumes is handled in a span that continues the producer's trace
  (:func:`consuming`), so one trace follows the loop: a prediction, the monitor's
  window decision and drift alert, the trainer's decision and job, the registration,
  the alias move and serving's hot swap.

Without an endpoint nothing is set up: OpenTelemetry's API stays a no-op and no event
carries a trace context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer

from driftloop_events.tracing import context_of

__all__ = ["consuming", "enabled", "instrument_app", "set_up", "span"]

#: Routes that answer probes and scrapes: not worth a span each.
EXCLUDED_URLS = "healthz,readyz,metrics"

_state: dict[str, Any] = {"provider": None, "tracer": None}

#: What :func:`consuming` and :func:`span` give when tracing is off (reusable).
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


def enabled() -> bool:
    """Whether this process records spans."""
    return _state["provider"] is not None


def set_up(
    service: str,
    endpoint: str | None,
    *,
    processor: SpanProcessor | None = None,
) -> TracerProvider | None:
    """Record this process's spans and send them to the OTLP/HTTP ``endpoint``.

    Once per process: the first call wins (OpenTelemetry's provider is global), later
    ones return it. ``processor`` replaces the exporter (a test's in-memory one).

    Args:
        service: The service's name; ``service.name`` is ``driftloop-<service>``.
        endpoint: The collector's base URL (``http://collector:4318``); spans go to
            ``<endpoint>/v1/traces``. None or empty: tracing stays off.
        processor: A span processor to use instead of the OTLP exporter.
    """
    provider: TracerProvider | None = _state["provider"]
    if provider is not None:
        return provider
    if not endpoint and processor is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"driftloop-{service}"}))
    if processor is None:
        provider.add_span_processor(BatchSpanProcessor(_exporter(str(endpoint))))
    else:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _state["provider"] = provider
    _state["tracer"] = provider.get_tracer("driftloop")
    return provider


def _exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    return OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")


def instrument_app(app: FastAPI) -> None:
    """Trace ``app``'s requests (OpenTelemetry's FastAPI instrumentation), when on."""
    provider = _state["provider"]
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)


def consuming(
    event_type: str,
    traceparent: str | None,
    tracestate: str | None = None,
    *,
    topic: str = "",
    event_id: str = "",
) -> AbstractContextManager[Span | None]:
    """A consumer span for handling an event, child of the span that made it (when the
    event carries a ``traceparent``); nothing when tracing is off (every consumed event
    passes here: off, it costs one look at the state)."""
    tracer: Tracer | None = _state["tracer"]
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(
        f"{topic or event_type} process",
        context=context_of(traceparent, tracestate),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "cloudevents.event_type": event_type,
            "cloudevents.event_id": event_id,
        },
    )


def span(
    name: str, *, parent: str | None = None, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Span | None]:
    """A span of this service's own work (a window's decision, a job, a hot swap);
    nothing when tracing is off.

    Args:
        name: The span's name.
        parent: A ``traceparent`` to continue (work that carries the context of the
            event that caused it, after that event's handler has returned); by
            default the current span is the parent.
        attributes: Span attributes (None values are left out).
    """
    tracer: Tracer | None = _state["tracer"]
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(
        name,
        context=context_of(parent) if parent else None,
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
    )
