"""Tracing and structured logs: one trace per order, each step an annotated subsegment.

Powertools ``Tracer`` (on aws-xray-sdk) and ``Logger``. In Lambda with active tracing the
runtime hands each invocation its trace context (``_X_AMZN_TRACE_ID``); boto3 is patched, so
every DynamoDB, SNS and Step Functions call is a subsegment and carries the trace onwards
(``X-Amzn-Trace-Id`` on Publish, which SNS turns into SQS's ``AWSTraceHeader``; the execution
input and ``traceHeader`` on StartExecution). Each step is a subsegment annotated with
``order_id``, ``flow`` and ``step``: ``annotation.order_id = "<id>"`` in the X-Ray console
finds an order's traces. Segments go to the X-Ray daemon as UDP datagrams
(``AWS_XRAY_DAEMON_ADDRESS``): fire and forget, so a missing daemon never blocks a request.

Outside Lambda (unit tests, ``chalice local``) Powertools switches the SDK off, and
``ORDERS_TRACING=off`` does so in Lambda too. Logs are JSON; while a handler works on an order,
every line carries ``order_id``, ``flow``, ``event_id`` (when known) and ``xray_trace_id``.

A stage may select OpenTelemetry instead (``ORDERS_TRACER=opentelemetry``, from the stage's
``tracer`` in deploy/stages.json): then every function here hands the same work to
``chalicelib/opentelemetry_tracer.py``, imported only then, which makes the same trace (spans
with the same names and attributes, the same X-Amzn-Trace-Id headers onwards).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.lambda_launcher import LambdaContext
from aws_xray_sdk.core.models.facade_segment import FacadeSegment
from aws_xray_sdk.core.models.segment import Segment
from aws_xray_sdk.core.models.subsegment import Subsegment
from aws_xray_sdk.core.models.trace_header import TraceHeader
from aws_xray_sdk.core.models.traceid import TraceId
from aws_xray_sdk.core.streaming.default_streaming import DefaultStreaming

from chalicelib import settings

SERVICE = "orders"
# The invocation's trace context, as the Lambda runtime sets it.
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"
# Keys a handler adds to its log lines while it works on one order.
ORDER_KEYS = ("order_id", "flow", "event_id", "step")

TRACE_HEADER = "X-Amzn-Trace-Id"
# The function a record segment does the work of (Lambda sets it; "orders" outside Lambda).
FUNCTION_NAME = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or SERVICE
# A record segment is the function's work for one record: the same node of the service map
# as the segment Lambda sends for the invocation, but in the order's trace.
RECORD_SEGMENT_ORIGIN = "AWS::Lambda::Function"
# The trace of the order the current API request acts on (see continue_order_trace).
_order_trace: ContextVar[str | None] = ContextVar("order_trace", default=None)

# The tracers a stage selects from (settings.TRACER); X-Ray unless the stage says otherwise.
XRAY, OPENTELEMETRY = "xray", "opentelemetry"
TRACERS = (XRAY, OPENTELEMETRY)
# The OpenTelemetry tracer, once configure() set it up (a stage that selected it, in Lambda).
_opentelemetry: ModuleType | None = None
# How many subsegments a segment may hold before they stream one closed subtree at a time, as
# the SDK streams: each datagram stays far below the daemon's 64 KB (a subsegment is 0.3-0.6 KB,
# about 1.3 KB with an error's 10-frame stack; no step of ours makes more than five AWS calls).
HELD_SUBSEGMENTS = 20

logger = Logger(service=SERVICE)
tracer = Tracer(
    service=SERVICE,
    auto_patch=False,
    disabled=os.environ.get("ORDERS_TRACING", "on") == "off" or None,
)


def configure() -> bool:
    """Set up the stage's tracer when tracing is on (in Lambda, not switched off): X-Ray's
    patches boto3, OpenTelemetry's instruments it and exports to the stage's OTLP endpoint.
    Returns whether tracing is on."""
    global _opentelemetry
    selected = selected_tracer()
    if selected == OPENTELEMETRY:
        if tracer.disabled or _opentelemetry is not None:  # off, or set up already
            return _opentelemetry is not None
        from chalicelib import opentelemetry_tracer

        opentelemetry_tracer.configure()
        _opentelemetry = opentelemetry_tracer
        return True
    if not tracing_on():
        return False
    if type(xray_recorder.context) is LambdaContext:
        xray_recorder.context = RefreshOnChangeLambdaContext()
        xray_recorder.streaming = WholeWorkStreaming(HELD_SUBSEGMENTS)
    tracer.patch(["boto3"])
    return True


class RefreshOnChangeLambdaContext(LambdaContext):  # type: ignore[misc]  # the SDK is untyped
    """Lambda's trace context, checked against ``_X_AMZN_TRACE_ID`` only when it changed.

    The SDK's LambdaContext parses the header anew on every look-up of the current entity,
    about 26 times per record with a step and three AWS calls: the largest single cost of the SDK's
    CPU per invocation. The answer depends only on the header and the current segment, so
    while both are the ones last checked, the check is skipped; a new invocation's header or
    a segment set since (``in_order_trace``) is checked as the SDK does.
    """

    def _refresh_context(self) -> None:
        header = os.environ.get(TRACE_HEADER_ENV)
        segment = getattr(self._local, "segment", None)
        checked = getattr(self._local, "checked", None)
        if checked is not None and checked[0] == header and checked[1] is segment:
            return
        super()._refresh_context()
        # Remember only a check the SDK passed (it kept the segment): the same header and
        # segment pass again. A segment it had to make anew is checked once more next time.
        kept = getattr(self._local, "segment", None) is segment and segment is not None
        self._local.checked = (header, segment) if kept else None


class WholeWorkStreaming(DefaultStreaming):  # type: ignore[misc]  # the SDK is untyped
    """Each piece of work leaves as one datagram, not one per subsegment.

    In Lambda the SDK streams every subsegment the moment it closes (threshold 0): a step with
    three AWS calls is four documents, each serialised and sent on its own. Here a subsegment
    directly under Lambda's segment (a task's step, an API request) leaves with everything under
    it once it closes, and a record's own segment (``in_order_trace``) keeps its subsegments and
    leaves whole when the record is done. Past ``threshold`` subsegments the SDK's rule applies
    (each closed subtree streams), which keeps every datagram small.
    """

    def is_eligible(self, segment: Segment | None) -> bool:
        if segment is None or not segment.sampled:
            return False
        if segment.get_total_subsegments_size() > self.streaming_threshold:
            return True
        # Lambda's segment is never sent from the function: what closed under it must stream.
        return isinstance(segment, FacadeSegment) and any(
            not subsegment.in_progress for subsegment in segment.subsegments
        )


def selected_tracer() -> str:
    """The stage's tracer; a value the deploy would not have set is refused, never guessed."""
    selected = os.environ.get(settings.TRACER, XRAY).strip() or XRAY
    if selected not in TRACERS:
        raise settings.ConfigurationError(
            f"{settings.TRACER} must be one of {', '.join(TRACERS)}, not {selected!r}"
        )
    return selected


def tracing_on() -> bool:
    if _opentelemetry is not None:
        return True
    return (
        bool(global_sdk_config.sdk_enabled())
        and not tracer.disabled
        and os.environ.get(settings.TRACER, XRAY) == XRAY
    )


@contextmanager
def traced(step: str, order_id: str, flow: str, event_id: str | None = None) -> Iterator[None]:
    """A subsegment named after the step, annotated with the order it worked on.

    Log lines name the order (and event) from here until the handler starts on another one
    (``work_on``); ``step`` only inside.
    """
    work_on(order_id, flow, event_id)
    logger.append_keys(step=step)
    try:
        if _opentelemetry is not None:
            with _opentelemetry.span(step, {"order_id": order_id, "flow": flow, "step": step}):
                yield
            return
        if not tracing_on():
            yield
            return
        with tracer.provider.in_subsegment(step) as subsegment:
            subsegment.put_annotation("order_id", order_id)
            subsegment.put_annotation("flow", flow)
            subsegment.put_annotation("step", step)
            yield
    finally:
        logger.remove_keys(["step"])


def work_on(order_id: str, flow: str, event_id: str | None = None) -> None:
    """From now on every log line names this order, its flow and (when known) the event."""
    logger.remove_keys(list(ORDER_KEYS))
    keys = {"order_id": order_id, "flow": flow}
    if event_id is not None:
        keys["event_id"] = event_id
    logger.append_keys(**keys)


def annotate_order(order_id: str, flow: str) -> None:
    """Name the order on the current request's subsegment and on every later log line of it."""
    logger.append_keys(order_id=order_id, flow=flow)
    if _opentelemetry is not None:
        _opentelemetry.annotate({"order_id": order_id, "flow": flow})
        return
    if not tracing_on():
        return
    try:
        tracer.put_annotation("order_id", order_id)
        tracer.put_annotation("flow", flow)
    except Exception:  # noqa: BLE001 - a facade segment refuses annotations; never fail a request
        logger.debug("the current trace entity takes no annotations")


@contextmanager
def traced_request(name: str) -> Iterator[None]:
    """One subsegment per API request (the route annotates it); log keys reset per request."""
    logger.remove_keys(list(ORDER_KEYS))
    _order_trace.set(None)  # a warm function's next request is about another order
    if _opentelemetry is not None:
        with _opentelemetry.span(name, {"step": name}):
            yield
        return
    if not tracing_on():
        yield
        return
    with tracer.provider.in_subsegment(name) as subsegment:
        subsegment.put_annotation("step", name)
        yield


def current_trace_header() -> str | None:
    """The trace context to hand on to work this code starts (an execution, a message)."""
    if _opentelemetry is not None:
        return _opentelemetry.current_trace_header() or os.environ.get(TRACE_HEADER_ENV) or None
    if tracing_on():
        try:
            entity = xray_recorder.get_trace_entity()
        except Exception:  # noqa: BLE001 - no entity: fall back to the invocation's context
            entity = None
        trace_id = getattr(entity, "trace_id", None)
        if trace_id and getattr(entity, "id", None):
            sampled = "1" if getattr(entity, "sampled", True) else "0"
            return f"Root={trace_id};Parent={entity.id};Sampled={sampled}"
    return os.environ.get(TRACE_HEADER_ENV) or None


@contextmanager
def in_order_trace(trace_header: str | None, name: str) -> Iterator[None]:
    """Work done inside is part of the trace `trace_header` names (X-Amzn-Trace-Id form:
    Root=...;Parent=...;Sampled=...): a segment of its own named `name`, parented to the
    header's Parent. With no header (or tracing off) the invocation's trace, as today.

    Lambda hands a batch one trace context, the invocation's, and the SDK refuses segments
    of a function's own; so per record this makes a segment in the order's trace, makes it
    the current trace entity and names it in ``_X_AMZN_TRACE_ID`` (every step subsegment and
    boto3 call hangs under it, onward headers and log lines carry it), then restores the
    invocation's context and sends the segment, its subsegments in it: one datagram per record
    (``WholeWorkStreaming``). Work left open in the invocation's trace would be lost across
    the switch, so a switch with a subsegment open is refused (logged, the work stays in the
    invocation's trace).
    """
    if _opentelemetry is not None:
        with _opentelemetry.in_order_trace(trace_header, name):
            yield
        return
    order = TraceHeader.from_header_str(trace_header) if trace_header else None
    if order is None or not order.root or not tracing_on():
        yield
        return
    current = xray_recorder.get_trace_entity()
    if isinstance(current, Subsegment):
        logger.warning("a subsegment is open: the record stays in the invocation's trace")
        yield
        return
    segment = Segment(name, traceid=order.root, parent_id=order.parent, sampled=order.sampled != 0)
    segment.origin = RECORD_SEGMENT_ORIGIN
    invocation_header = os.environ.get(TRACE_HEADER_ENV)
    os.environ[TRACE_HEADER_ENV] = (
        f"Root={order.root};Parent={segment.id};Sampled={1 if segment.sampled else 0}"
    )
    xray_recorder.context.set_trace_entity(segment)
    try:
        yield
    except Exception as error:
        segment.add_exception(
            error, traceback.extract_tb(error.__traceback__, limit=xray_recorder.max_trace_back)
        )
        raise
    finally:
        if xray_recorder.get_trace_entity() is not segment:
            logger.warning("a subsegment of the record's segment was left open; it is lost")
        if invocation_header is None:
            os.environ.pop(TRACE_HEADER_ENV, None)
        else:
            os.environ[TRACE_HEADER_ENV] = invocation_header
        xray_recorder.context.set_trace_entity(current)
        segment.close()
        if segment.sampled:
            xray_recorder.emitter.send_entity(segment)


# --- one trace per order ----------------------------------------------------------------
# An order's trace begins with the request that places it; its root is stored with the
# order. Every later request about the order (accept, complete, cancel) hands the order's
# trace on to the work it starts, so the events it publishes, and every function they
# reach, join the order's trace rather than the request's. (Clients that send the order's
# trace_header as X-Amzn-Trace-Id put the request's own segment in it too: API Gateway
# continues an incoming trace header.)


def new_order_trace_header() -> str:
    """The trace a new order's steps join: the placing request's root, or a new one when
    nothing traces this request (``chalice local``)."""
    current = current_trace_header()
    root = _field(current, "Root") if current else None
    sampled = (_field(current, "Sampled") if current else None) or "1"
    return f"Root={root or TraceId().to_id()};Sampled={sampled}"


def continue_order_trace(order_trace_header: str | None) -> None:
    """From here on in this request, work started for the order joins the order's trace."""
    _order_trace.set(order_trace_header)


def onward_trace_header() -> str | None:
    """The trace context to hand on: the current one, unless the request acts on an order
    with a trace of its own (then the order's, keeping the current parent when they agree)."""
    current = current_trace_header()
    order = _order_trace.get()
    if order is None or (current is not None and _field(current, "Root") == _field(order, "Root")):
        return current
    return order


def send_in_order_trace(request: Any, **_: Any) -> None:
    """botocore ``before-send`` hook: outgoing calls carry the onward trace header."""
    header = onward_trace_header()
    if header is not None:
        request.headers[TRACE_HEADER] = header


def _field(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
