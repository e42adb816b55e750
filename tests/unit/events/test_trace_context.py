"""Events carry the W3C trace context of the span they were made in (CloudEvents'
distributed tracing extension), through the Kafka record and back."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_events.envelope import H_TRACEPARENT, CloudEvent, from_record, to_record
from driftloop_events.tracing import context_of

pytestmark = pytest.mark.unit


def alias_set() -> registry.AliasSet:
    return registry.AliasSet(name="iris", alias="champion", version=2)


def test_an_event_made_in_a_span_carries_its_context_to_the_consumer() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        event = CloudEvent.new(alias_set())
    context = span.get_span_context()
    assert event.traceparent is not None
    assert event.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    record = to_record(event)
    assert (H_TRACEPARENT, event.traceparent.encode()) in record.headers
    received = from_record(record.value, record.headers)
    assert received.traceparent == event.traceparent
    parent = context_of(received.traceparent)
    assert parent is not None
    with tracer.start_as_current_span("consume", context=parent) as child:
        pass
    assert isinstance(child, ReadableSpan)
    assert child.parent is not None
    assert child.parent.span_id == context.span_id
    assert child.get_span_context().trace_id == context.trace_id


def test_an_event_made_outside_any_span_carries_no_trace_context() -> None:
    record = to_record(CloudEvent.new(alias_set()))
    assert not any(name == H_TRACEPARENT for name, _ in record.headers)
    assert from_record(record.value, record.headers).traceparent is None


@pytest.mark.parametrize("value", ["", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_a_missing_or_malformed_traceparent_starts_no_trace(value: str) -> None:
    assert context_of(value) is None
