"""End to end: a stage on OpenTelemetry makes the same trace as X-Ray's, one per order.

The OTLP endpoint is localdev/otlp_receiver.py, an HTTP server that decodes what the functions
export (OTLP/HTTP, protobuf). For the test's duration every function of the local stage's SAM
deployment (which only this group's tests use, one at a time) runs the OpenTelemetry tracer, as
a stage with ``"tracer": "opentelemetry"`` would (the same variables, set with
UpdateFunctionConfiguration by the tracing benchmark's ``tracer_set`` and put back after), so
no stage is deployed for it. One order per flow is placed through the deployed API Gateway URL
and played to COMPLETED; the API requests and every step must be spans of the order's one
trace, the trace its ``trace_header`` names, annotated like X-Ray's subsegments, and the AWS
calls spans inside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from chalicelib.functions import FUNCTIONS
from deploy.stages import Deployment, DeployPath, load_stage
from localdev.orders_api import OrdersApi, eventually
from localdev.otlp_receiver import OtlpReceiver, Span
from tests.e2e.conftest import SCENARIOS, SlowScenarios, an_order
from tools.benchmark_tracing import tracer_set

# Serial with the X-Ray trace test and the other users of the SAM deployment (one process).
pytestmark = [pytest.mark.e2e, SCENARIOS]

# The steps each flow's order passes through (each a span in the function it ran in), and the
# API requests about it: all in the order's one trace.
STEPS: dict[str, list[str]] = {
    "choreography": ["notify_restaurant", "notify_user", "issue_completion_voucher"],
    "orchestration": [
        "notify_restaurant",
        "accept_order",
        "notify_user",
        "complete_order",
        "issue_completion_voucher",
    ],
}
REQUESTS = ["POST /orders", "POST /orders/{order_id}/accept", "POST /orders/{order_id}/complete"]


@pytest.fixture(scope="module")
def opentelemetry_sam_stage(
    local_cloud: Any, sam_deployment: dict[str, Any]
) -> Iterator[OtlpReceiver]:
    """The SAM deployment's functions on the OpenTelemetry tracer, exporting to a receiver
    here, until the module's tests end (as the tracing benchmark switches them); then their
    configuration is what it was."""
    deployment = Deployment(load_stage("local"), DeployPath.SAM)
    names = [deployment.function_name(function.name) for function in FUNCTIONS]
    with (
        closing(OtlpReceiver()) as receiver,
        tracer_set(local_cloud.client("lambda"), names, "opentelemetry", receiver.endpoint),
    ):
        yield receiver


# One order at a time: a handler invoked with a batch of two orders' messages is in neither
# order's trace locally (tests/e2e/test_tracing.py says why).
def test_an_order_is_one_opentelemetry_trace_from_the_api_to_the_last_function(
    sam_api: OrdersApi,
    opentelemetry_sam_stage: OtlpReceiver,
    flow: str,
    slow_scenarios: SlowScenarios,
) -> None:
    # GIVEN no other order in flight, and every function of the deployment on OpenTelemetry
    slow_scenarios.forgeries.result(timeout=120)
    # WHEN one order is placed through API Gateway and played to COMPLETED (the client sends
    # the order's trace_header with its later requests, as with X-Ray)
    order_id = sam_api.complete(an_order(flow))["order_id"]
    # THEN (below) it is one trace
    check_one_trace(opentelemetry_sam_stage, sam_api, flow, order_id)


def check_one_trace(receiver: OtlpReceiver, api: OrdersApi, flow: str, order_id: str) -> None:
    wanted = set(STEPS[flow]) | set(REQUESTS)

    def every_step_traced() -> dict[str, Span] | None:
        named = {s.name: s for s in receiver.spans if s.attributes.get("order_id") == order_id}
        return named if wanted <= set(named) else None

    spans = eventually(every_step_traced, 30, f"every step of the {flow} order exported")

    # THEN each step is a span annotated with the order, its flow and the step
    for name in STEPS[flow]:
        assert spans[name].attributes == {"order_id": order_id, "flow": flow, "step": name}
    for request in REQUESTS:
        assert spans[request].attributes["flow"] == flow
    # AND the requests and every step are in ONE trace: the one the order's trace_header names
    trace = api.order(order_id)["trace_header"].split(";")[0].removeprefix("Root=")
    assert {spans[name].trace_id for name in wanted} == {trace}, flow
    # AND the AWS calls made inside a step are spans of it, in the same trace
    by_id = {s.span_id: s for s in receiver.spans}
    step_ids = {spans[name].span_id for name in STEPS[flow]}
    calls = [s for s in receiver.spans if s.parent_id in step_ids]
    assert calls, f"no AWS call was traced inside a step of the {flow} order"
    assert {call.trace_id for call in calls} == {trace}
    assert all(by_id[call.parent_id].function == call.function for call in calls)
    print(
        f"\n{flow} order {order_id}: trace {trace}, "
        f"{sum(s.trace_id == trace for s in receiver.spans)} spans in it, "
        f"from {sorted({s.function for s in receiver.spans if s.trace_id == trace})}"
    )
