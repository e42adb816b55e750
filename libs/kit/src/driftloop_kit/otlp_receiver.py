"""An OTLP/HTTP trace receiver in the calling process (tests, the loop benchmark): where
the services' exporters send their spans, kept in memory (a collector's receiver, nothing
more).

It speaks the part of OTLP/HTTP the OpenTelemetry SDK's exporter uses: ``POST
/v1/traces`` with a protobuf ``ExportTraceServiceRequest`` (gzip or not), answered
with an empty ``ExportTraceServiceResponse``.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as a service exported it."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class OtlpReceiver:
    """Spans received, by span id; :meth:`running` serves on a free port."""

    spans: dict[str, ReceivedSpan] = field(default_factory=dict)
    endpoint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    received = ReceivedSpan(
                        service=service,
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={
                            a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                            for a in span.attributes
                        },
                    )
                    with self._lock:
                        self.spans[received.span_id] = received

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        """``span`` and its parents up to the root (or the first parent not received)."""
        chain = [span]
        while chain[-1].parent_id and chain[-1].parent_id in self.spans:
            chain.append(self.spans[chain[-1].parent_id])
        return chain

    def named(self, name: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans.values() if s.name == name]

    @contextlib.contextmanager
    def running(self) -> Iterator[OtlpReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.accept(body)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
