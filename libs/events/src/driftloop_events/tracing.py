"""The W3C trace context an event carries: CloudEvents' distributed tracing extension.

An event made while a span is being recorded (a request, a consumer's handler) carries
that span's ``traceparent`` and ``tracestate`` as the ``ce_traceparent`` and
``ce_tracestate`` attributes; a consumer that continues the trace makes its span a
child of it. Only OpenTelemetry's API is used here, which is a no-op until a service
sets up the SDK (``driftloop_kit.tracing``): with tracing off, no event carries a
trace context and nothing here costs more than a look at the current span.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["context_of", "current_trace_context"]

_PROPAGATOR = TraceContextTextMapPropagator()


def current_trace_context() -> tuple[str | None, str | None]:
    """The ``traceparent`` and ``tracestate`` of the current span, or two Nones when no
    span is being recorded."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None, None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


def context_of(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context whose remote parent is the span ``traceparent`` names; None when
    there is none or it is malformed (the consumer then starts a trace of its own)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context
