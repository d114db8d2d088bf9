"""The OpenTelemetry tracer: a stage's alternative to Powertools Tracer on aws-xray-sdk.

``chalicelib/tracing.py`` imports this module only in the functions of a stage that selected it
(``"tracer": "opentelemetry"`` in deploy/stages.json), so a stage on X-Ray never pays for it.

The plain OpenTelemetry SDK, with X-Ray's trace ids (``AwsXRayIdGenerator``: the first 32 bits
are the start time, as X-Ray requires) and X-Ray's header (``AwsXRayPropagator``): the context
comes in and goes on as ``X-Amzn-Trace-Id`` (``Root=1-...;Parent=...;Sampled=1``), so functions
on either tracer, and AWS itself (SNS, SQS, Step Functions), continue one another's traces.
Spans go as OTLP (HTTP/protobuf) to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (docs/tracing.md:
which endpoint in AWS), and each is exported before the invocation answers: Lambda freezes the
process afterwards, so nothing may wait in a buffer for a background thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.aws import AwsXRayLambdaPropagator, AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

TRACE_HEADER = "X-Amzn-Trace-Id"
Attributes = dict[str, str]

# The X-Ray header of the invocation (Lambda's _X_AMZN_TRACE_ID) parents a span begun with no
# span of ours around it; an explicit header parents a record's span (in_order_trace).
_lambda_propagator = AwsXRayLambdaPropagator()
_propagator = AwsXRayPropagator()
# The trace a root span must join: an order's stored header names a trace but no parent.
_forced_trace_id: ContextVar[int | None] = ContextVar("forced_trace_id", default=None)
_tracer: trace.Tracer | None = None
# A collector beside the function (the ADOT layer's, on localhost) answers in milliseconds.
EXPORT_TIMEOUT_SECONDS = 1.0


class OrderTraceIds(AwsXRayIdGenerator):
    """X-Ray's ids; a span that starts an order's trace anew takes the order's trace id."""

    def generate_trace_id(self) -> int:
        forced = _forced_trace_id.get()
        return forced if forced is not None else super().generate_trace_id()


class ExportWhenLocalRootEnds(SpanProcessor):
    """Exports the spans of one piece of work (a request, a step, a record) together, when its
    outermost span ends: one OTLP request per piece rather than one per span (the SDK's
    SimpleSpanProcessor), and nothing left in a buffer when the invocation answers (the SDK's
    BatchSpanProcessor exports from a thread, which Lambda freezes)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self._ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self._ended.append(span)
        if span.parent is None or span.parent.is_remote:
            self.force_flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ended, self._ended = self._ended, []
        if ended:
            # An export that fails is logged by the exporter; it never fails the request.
            self._exporter.export(ended)
        return True

    def shutdown(self) -> None:
        self.force_flush()
        self._exporter.shutdown()


def _parent_or_invocation(context: Context | None) -> Context | None:
    """The context a span starts in: the one given, else the current span's, else (nothing of
    ours around it) the invocation's trace, as X-Ray's SDK hangs such work under Lambda's
    segment. Without it, an AWS call made outside any step (a task saving its callback token)
    would start a trace of its own."""
    if context is None and not trace.get_current_span().get_span_context().is_valid:
        return _lambda_propagator.extract({})
    return context


class InvocationParentedTracer(trace.Tracer):
    """A tracer whose spans with no parent join the invocation's trace (see above)."""

    def __init__(self, inner: trace.Tracer) -> None:
        self._inner = inner

    def start_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> trace.Span:
        return self._inner.start_span(name, _parent_or_invocation(context), *args, **kwargs)

    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return self._inner.start_as_current_span(
            name, _parent_or_invocation(context), *args, **kwargs
        )


class InvocationParentedTracerProvider(TracerProvider):
    """Hands out InvocationParentedTracers, to our code and to the boto3 instrumentation."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return InvocationParentedTracer(super().get_tracer(*args, **kwargs))


def configure(exporter: SpanExporter | None = None, instrument_boto: bool = True) -> None:
    """The tracer, exporting to ``exporter`` (by default OTLP over HTTP, to the endpoint the
    stage set), with every boto3 call a span (once per process)."""
    global _tracer
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The endpoint from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Its timeout bounds what an
        # export may add to a request: the SDK's default (10 s, with retries while the
        # collector refuses) would hold every invocation of a function whose collector is down.
        timeout = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        exporter = OTLPSpanExporter(timeout=float(timeout) if timeout else EXPORT_TIMEOUT_SECONDS)
    resource = Resource.create(
        {
            "service.name": os.environ.get("POWERTOOLS_SERVICE_NAME", "orders"),
            "faas.name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            "cloud.provider": "aws",
        }
    )
    provider = InvocationParentedTracerProvider(resource=resource, id_generator=OrderTraceIds())
    provider.add_span_processor(ExportWhenLocalRootEnds(exporter))
    _tracer = provider.get_tracer(__name__)
    if instrument_boto:
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        # The instrumentation would also write the context into every Publish's message
        # attributes, with the global propagator: none. The trace travels as AWS carries it,
        # the X-Amzn-Trace-Id header the instrumentation sets on each request (SNS hands it to
        # SQS as AWSTraceHeader), and the message keeps its own attributes only.
        propagate.set_global_textmap(CompositePropagator([]))
        BotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


@contextmanager
def span(name: str, attributes: Attributes, parent: Context | None = None) -> Iterator[None]:
    """A span named ``name``, current inside: a child of the current span, or else of
    ``parent``, or else of the invocation's trace (Lambda's ``_X_AMZN_TRACE_ID``)."""
    assert _tracer is not None, "configure() first"
    # (with neither, InvocationParentedTracer parents it to the invocation's trace)
    with _tracer.start_as_current_span(name, context=parent, attributes=attributes):
        yield


@contextmanager
def in_order_trace(trace_header: str | None, name: str) -> Iterator[None]:
    """Work done inside is part of the trace ``trace_header`` names (X-Amzn-Trace-Id form): a
    span of its own named ``name``, whose parent is the header's ``Parent`` (a header with no
    parent, an order's stored one, makes it a root span of that trace). With no header (or
    one that names no trace) the invocation's trace."""
    assert _tracer is not None, "configure() first"
    parent = _propagator.extract({TRACE_HEADER: trace_header or ""})
    has_parent = trace.get_current_span(parent).get_span_context().is_valid
    root = None if has_parent or not trace_header else _trace_id(trace_header)
    if not has_parent and root is None:
        with span(name, {}):
            yield
        return
    # The record's trace, not whichever span is current (the invocation's).
    forced = _forced_trace_id.set(root)
    try:
        record = _tracer.start_span(name, context=parent)
    finally:
        _forced_trace_id.reset(forced)
    with trace.use_span(record, end_on_exit=True):
        yield


def annotate(attributes: Attributes) -> None:
    """Name the order on the current span (the request's)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(attributes)


def current_trace_header() -> str | None:
    """The current span's context as an X-Amzn-Trace-Id header, or None outside any span."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(carrier)
    return carrier.get(TRACE_HEADER)


def _trace_id(trace_header: str) -> int | None:
    """The trace id an X-Ray header's ``Root`` names (``1-<8 hex>-<24 hex>``), if well formed."""
    for part in trace_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root":
            version, _, rest = value.partition("-")
            digits = rest.replace("-", "")
            if version == "1" and len(digits) == 32:
                try:
                    return int(digits, 16)
                except ValueError:
                    return None
    return None
