"""A stand-in for an OTLP endpoint: it receives what the functions export, and keeps it.

A stage on the OpenTelemetry tracer (chalicelib/opentelemetry_tracer.py) exports its spans as
OTLP/HTTP (protobuf) to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; in AWS that is a collector or
X-Ray's OTLP endpoint. Locally the functions run on the host, so the OpenTelemetry trace test
and the tracing benchmark point them at this receiver (as ``xray_daemon.py`` stands in for the
X-Ray daemon).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str  # as X-Ray writes it: 1-<8 hex>-<24 hex>
    span_id: str
    parent_id: str
    attributes: dict[str, str]
    function: str  # the exporting function (its resource's faas.name)


def _strings(pairs: Any) -> dict[str, str]:
    return {pair.key: pair.value.string_value for pair in pairs if isinstance(pair, KeyValue)}


class OtlpReceiver:
    """An OTLP/HTTP endpoint on the host (a free port) from creation until ``close`` (with
    ``contextlib.closing``): every span
    received is in ``spans``; ``requests`` and ``bytes_received`` (the requests' bodies, as
    sent) count what arrived."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.bytes_received = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.receive(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            function = _strings(resource_spans.resource.attributes).get("faas.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    digits = span.trace_id.hex()
                    spans.append(
                        Span(
                            name=span.name,
                            trace_id=f"1-{digits[:8]}-{digits[8:]}",
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_strings(span.attributes),
                            function=function,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)
            self.requests += 1
            self.bytes_received += len(body)

    def take(self) -> tuple[list[Span], int, int]:
        """What arrived since the last take: the spans, requests and bytes; then forget it."""
        with self._lock:
            taken = (self.spans, self.requests, self.bytes_received)
            self.spans, self.requests, self.bytes_received = [], 0, 0
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
