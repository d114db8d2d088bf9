"""OpenTelemetry as a stage's tracer: the same trace as X-Ray's (one trace per order, each step a
span annotated order_id, flow, step; each API request a span naming its order), headers onward
in X-Ray form, and every span exported before the invocation answers.

The SDK's in-memory exporter receives what the OTLP exporter would send.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from chalice.test import Client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chalicelib import opentelemetry_tracer, settings, tracing
from chalicelib.contracts import event_to_message
from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from tests.unit.conftest import onward_traces_of_publishes, place_through_api
from tests.unit.fakes import FakeDependencies
from tests.unit.test_choreography_handlers import deliver

PROJECT = Path(__file__).resolve().parents[2]
# The invocation's context, as Lambda sets it (the function segment as Parent).
INVOCATION = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
ORDER_A = "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=1"
ORDER_B = "Root=1-44444444-555555555555555555555555;Sampled=1"  # as stored: no parent


def xray_trace_id(span: ReadableSpan) -> str:
    """The span's trace id as X-Ray writes it: 1-<8 hex>-<24 hex>."""
    assert span.context is not None
    digits = f"{span.context.trace_id:032x}"
    return f"1-{digits[:8]}-{digits[8:]}"


def span_id(span: ReadableSpan | None) -> str | None:
    return None if span is None or span.context is None else f"{span.context.span_id:016x}"


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A stage on OpenTelemetry: chalicelib/tracing.py hands its work to the OpenTelemetry
    tracer, which exports to memory (boto3 is not instrumented: the unit tests' ports are
    fakes)."""
    exporter = InMemorySpanExporter()
    opentelemetry_tracer.configure(exporter, instrument_boto=False)
    monkeypatch.setattr(tracing, "_opentelemetry", opentelemetry_tracer)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", INVOCATION)
    yield exporter
    tracing.continue_order_trace(None)


def test_a_request_and_the_step_it_causes_are_spans_of_the_orders_one_trace(
    client: Client, deps: FakeDependencies, exported: InMemorySpanExporter
) -> None:
    # GIVEN an order placed through the API, in the invocation's trace
    published = onward_traces_of_publishes(deps)
    answer = place_through_api(client, "choreography")
    order_id = answer["order_id"]
    # WHEN the restaurant notifier handles the event it published
    deliver(client, RESTAURANT_NOTIFIER, json.dumps(event_to_message(deps.events.published[0])))
    spans = {span.name: span for span in exported.get_finished_spans()}

    # THEN the request is a span naming the order, in the invocation's trace, under its segment
    request = spans["POST /orders"]
    assert dict(request.attributes or {}) == {
        "step": "POST /orders",
        "order_id": order_id,
        "flow": "choreography",
    }
    assert xray_trace_id(request) == "1-5759e988-bd862e3fe1be46a994272793"
    assert parent_id(request) == "53995c3f42cd8ad8"
    # AND the order's trace is that trace, and each event published carries it in X-Ray form,
    # with the span that published it as the parent: the request's, then the step's
    assert answer["trace_header"] == "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    step = spans["notify_restaurant"]
    assert published == [
        f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={span_id(span)};Sampled=1"
        for span in (request, step)
    ]
    # AND the step is a span annotated like X-Ray's subsegment
    assert dict(step.attributes or {}) == {
        "order_id": order_id,
        "flow": "choreography",
        "step": "notify_restaurant",
    }


def test_each_record_of_a_batch_mixing_two_orders_is_in_its_own_orders_trace(
    exported: InMemorySpanExporter,
) -> None:
    # GIVEN one invocation handling a batch: a record of order A (its header names a parent),
    # one of order B (its stored header: a trace, no parent), and one that carries none
    batch = [("a", ORDER_A), ("b", ORDER_B), ("c", None)]
    # WHEN each record is worked on in its order's trace, each with a step inside
    for order_id, header in batch:
        with (
            tracing.in_order_trace(header, "record"),
            tracing.traced("notify_user", order_id, "choreography"),
        ):
            inner_header = tracing.current_trace_header()
        assert inner_header is not None
    spans = exported.get_finished_spans()
    records = [s for s in spans if s.name == "record"]
    steps = {s.attributes["order_id"]: s for s in spans if s.name == "notify_user" if s.attributes}

    # THEN A's record span is a child of A's header's parent, in A's trace
    assert xray_trace_id(records[0]) == "1-11111111-222222222222222222222222"
    assert parent_id(records[0]) == "3333333333333333"
    # AND B's record span is a root span of B's trace
    assert xray_trace_id(records[1]) == "1-44444444-555555555555555555555555"
    assert records[1].parent is None
    # AND a record carrying no trace stays in the invocation's
    assert xray_trace_id(records[2]) == "1-5759e988-bd862e3fe1be46a994272793"
    assert parent_id(records[2]) == "53995c3f42cd8ad8"
    # AND each step is a child of its own record's span: nothing of one order in another's trace
    for record, order_id in zip(records, "abc", strict=True):
        assert parent_id(steps[order_id]) == span_id(record)
        assert xray_trace_id(steps[order_id]) == xray_trace_id(record)
    assert len({xray_trace_id(s) for s in spans}) == 3


def test_work_after_a_record_is_back_in_the_invocations_trace(
    exported: InMemorySpanExporter,
) -> None:
    with tracing.in_order_trace(ORDER_A, "record"):
        pass
    assert tracing.current_trace_header() == INVOCATION
    with tracing.traced("sweep", "o-1", "choreography"):
        pass
    (_record, sweep) = exported.get_finished_spans()
    assert xray_trace_id(sweep) == "1-5759e988-bd862e3fe1be46a994272793"


def test_the_onward_header_inside_a_step_is_the_steps_span_in_x_ray_form(
    exported: InMemorySpanExporter,
) -> None:
    with tracing.traced("accept_order", "o-1", "orchestration"):
        header = tracing.current_trace_header()
    (step,) = exported.get_finished_spans()
    assert header == f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={span_id(step)};Sampled=1"


def test_spans_are_exported_when_the_outermost_span_ends_not_later(
    exported: InMemorySpanExporter,
) -> None:
    # GIVEN a request span with a step inside it
    with tracing.traced_request("POST /orders/{order_id}/accept"):
        with tracing.traced("accept_order", "o-1", "orchestration"):
            pass
        # WHILE the request goes on, nothing is sent yet (one export per piece of work)
        assert exported.get_finished_spans() == ()
    # THEN once it ends both are exported: nothing waits for a thread Lambda would freeze
    assert [s.name for s in exported.get_finished_spans()] == [
        "accept_order",
        "POST /orders/{order_id}/accept",
    ]


def test_a_tracer_the_deploy_would_not_set_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.TRACER, "zipkin")
    with pytest.raises(settings.ConfigurationError, match="ORDERS_TRACER must be one of"):
        tracing.configure()


LOADS = """
import sys
from chalicelib import tracing
on = tracing.configure()
print(on, any(name.split(".")[0] == "opentelemetry" for name in sys.modules))
"""


@pytest.mark.parametrize(
    ("tracer", "tracing_switch", "expected"),
    [
        ("xray", "on", "True False"),
        ("opentelemetry", "on", "True True"),
        ("opentelemetry", "off", "False False"),
    ],
)
def test_only_a_stage_on_opentelemetry_loads_it(
    tracer: str, tracing_switch: str, expected: str
) -> None:
    # GIVEN a Lambda function's environment on a stage with that tracer
    environment = os.environ | {
        "LAMBDA_TASK_ROOT": str(PROJECT),
        "AWS_LAMBDA_FUNCTION_NAME": "orders-unit",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_X_AMZN_TRACE_ID": INVOCATION,
        settings.TRACER: tracer,
        settings.OTLP_TRACES_ENDPOINT: "http://127.0.0.1:9/v1/traces",
        "ORDERS_TRACING": tracing_switch,
    }
    # WHEN tracing is set up
    done = subprocess.run(
        [sys.executable, "-c", LOADS],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN OpenTelemetry is loaded (and tracing on) only where the stage selected it
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_an_aws_call_outside_any_step_is_in_the_invocations_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a stage on OpenTelemetry with boto3 instrumented, in an invocation's trace
    from botocore.stub import Stubber
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    exporter = InMemorySpanExporter()
    opentelemetry_tracer.configure(exporter, instrument_boto=True)
    monkeypatch.setattr(tracing, "_opentelemetry", opentelemetry_tracer)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", INVOCATION)
    try:
        dynamodb = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        # WHEN a call is made outside any span of ours (a task saving its callback token)
        with Stubber(dynamodb) as stub:
            stub.add_response("update_item", {})
            dynamodb.update_item(TableName="orders", Key={"pk": {"S": "o-1"}})
    finally:
        BotocoreInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    # THEN its span is in the invocation's trace, a child of Lambda's segment, not a trace anew
    (call,) = exporter.get_finished_spans()
    assert xray_trace_id(call) == "1-5759e988-bd862e3fe1be46a994272793"
    assert parent_id(call) == INVOCATION.split("Parent=")[1].split(";")[0]
