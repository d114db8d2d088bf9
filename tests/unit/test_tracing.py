"""Tracing and logs: JSON lines that name the order, a daemon nobody needs, the local executor's
trace context (what it continues, as AWS does)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice.test import Client

from chalicelib import tracing
from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from chalicelib.tracing import logger
from tests.unit.conftest import as_party, load_event
from tests.unit.fakes import FakeDependencies
from tests.unit.test_choreography_handlers import deliver, placed

PROJECT = Path(__file__).resolve().parents[2]
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def executor_xray() -> ModuleType:
    """The executor's module (it runs inside LocalStack, so it is loaded from its file)."""
    path = PROJECT / "localcloud/lambda_executor/localcloud_lambda_executor/xray.py"
    spec = importlib.util.spec_from_file_location("executor_xray", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_line_logged_about_an_event_names_its_order_event_flow_and_trace(
    client: Client, deps: FakeDependencies, monkeypatch: Any
) -> None:
    # GIVEN an invocation in a trace, and a batch whose first event no stored order recorded
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    unknown = load_event("order_placed")
    output = io.StringIO()
    previous = logger.registered_handler.setStream(output)  # type: ignore[attr-defined]
    try:
        # WHEN the handler refuses it (logged twice: refused, then failed) and handles the other
        deliver(client, RESTAURANT_NOTIFIER, json.dumps(unknown), placed(deps))
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    # THEN every line is JSON naming the order, its event, its flow and the trace
    assert len(lines) >= 2
    for line in lines:
        assert line["order_id"] == unknown["order_id"]
        assert line["event_id"] == unknown["event_id"]
        assert line["flow"] == unknown["flow"]
        assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    # AND nothing of that event sticks to the lines of the next one
    assert "order_id" not in logger.get_current_keys()


NO_DAEMON_SCRIPT = """
import os, time
from chalicelib import tracing
assert tracing.configure(), "tracing is on in Lambda"
from aws_xray_sdk.core import xray_recorder
began = time.monotonic()
for _ in range(50):
    with tracing.traced("notify_restaurant", "o-1", "choreography"):
        pass
elapsed = time.monotonic() - began
emitter_socket = xray_recorder.emitter._socket
print(emitter_socket.gettimeout(), round(elapsed * 1000, 1))
"""


def test_tracing_in_lambda_never_blocks_or_fails_when_no_daemon_listens() -> None:
    # GIVEN Lambda's environment with active tracing, and nothing on the daemon address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = os.environ | {
        "LAMBDA_TASK_ROOT": str(PROJECT),
        "AWS_LAMBDA_FUNCTION_NAME": "orders-unit",
        "_X_AMZN_TRACE_ID": TRACE,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "ORDERS_TRACING": "on",
    }
    # WHEN steps are traced (each subsegment is sent as it ends)
    done = subprocess.run(
        [sys.executable, "-c", NO_DAEMON_SCRIPT],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN they all complete, through a non-blocking socket (fire and forget)
    assert done.returncode == 0, done.stderr
    timeout, _elapsed_ms = done.stdout.split()
    assert float(timeout) == 0.0


def test_the_executor_continues_an_sqs_batch_of_one_trace() -> None:
    xray = executor_xray()
    record = {"eventSource": "aws:sqs", "attributes": {"AWSTraceHeader": TRACE}}
    assert xray.carried_trace_header(json.dumps({"Records": [record, record]})) == TRACE


def test_the_executor_does_not_continue_a_batch_of_several_traces() -> None:
    xray = executor_xray()
    other = TRACE.replace("5759e988", "5759e989")
    records = [
        {"eventSource": "aws:sqs", "attributes": {"AWSTraceHeader": header}}
        for header in (TRACE, other)
    ]
    assert xray.carried_trace_header(json.dumps({"Records": records})) is None


def test_the_executor_continues_the_trace_a_state_machine_put_in_the_payload() -> None:
    xray = executor_xray()
    assert xray.carried_trace_header(json.dumps({"AWSTraceHeader": TRACE, "x": 1})) == TRACE
    assert xray.carried_trace_header(json.dumps({"AWSTraceHeader": ""})) is None
    assert xray.carried_trace_header('{"order_id": "o-1"}') is None


def test_the_executor_continues_the_trace_a_request_to_api_gateway_carries() -> None:
    xray = executor_xray()
    request = {"requestContext": {"stage": "api"}, "headers": {"X-Amzn-Trace-Id": TRACE}}
    assert xray.carried_trace_header(json.dumps(request)) == TRACE
    untraced = {"requestContext": {}, "headers": {"Accept": "*/*"}, "body": "X-Amzn-Trace-Id"}
    assert xray.carried_trace_header(json.dumps(untraced)) is None
    unsampled = {"requestContext": {}, "headers": {"x-amzn-trace-id": TRACE[:-1] + "0"}}
    assert xray.carried_trace_header(json.dumps(unsampled)) is None
    # Only an API Gateway request's headers count, not a body that happens to look like one.
    assert xray.carried_trace_header(json.dumps({"headers": {"X-Amzn-Trace-Id": TRACE}})) is None


def test_the_function_segment_is_the_parent_of_what_the_function_sends() -> None:
    xray = executor_xray()
    segment = xray.FunctionSegment.begin(TRACE, "orders-local-promotions", "arn:fn")
    assert segment.header == (
        f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={segment.id};Sampled=1"
    )
    document = segment.document(error=False)
    assert document["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert document["parent_id"] == "53995c3f42cd8ad8"
    assert document["origin"] == "AWS::Lambda::Function"


# --- one trace per order ---------------------------------------------------------------


def test_an_order_placed_where_nothing_traces_gets_a_new_trace_of_its_own(
    monkeypatch: Any,
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    first, second = tracing.new_order_trace_header(), tracing.new_order_trace_header()
    assert first != second
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=1", first)


def test_an_order_placed_in_a_traced_request_keeps_that_requests_root(monkeypatch: Any) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    assert tracing.new_order_trace_header() == "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"


ORDER_TRACE = "Root=1-11111111-222222222222222222222222;Sampled=1"


def test_work_for_an_order_joins_the_orders_trace_unless_it_is_already_in_it(
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    tracing.continue_order_trace(None)
    assert tracing.onward_trace_header() == TRACE  # no order: the request's own trace
    tracing.continue_order_trace(ORDER_TRACE)
    assert tracing.onward_trace_header() == ORDER_TRACE  # another request about the order
    same_root = ORDER_TRACE.replace(";Sampled=1", ";Parent=53995c3f42cd8ad8;Sampled=1")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", same_root)
    assert tracing.onward_trace_header() == same_root  # in the order's trace: keep the parent
    tracing.continue_order_trace(None)


def test_publish_carries_the_onward_trace_header(monkeypatch: Any) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)

    class Request:
        headers: dict[str, str] = {}

    tracing.continue_order_trace(ORDER_TRACE)
    request = Request()
    tracing.send_in_order_trace(request)
    tracing.continue_order_trace(None)
    assert request.headers == {"X-Amzn-Trace-Id": ORDER_TRACE}


def test_actions_on_an_order_publish_in_the_orders_trace(
    client: Client, deps: FakeDependencies, monkeypatch: Any
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    seen: list[str | None] = []
    publish = deps.events.publish

    def publish_noting_the_trace(event: Any) -> None:
        seen.append(tracing.onward_trace_header())
        publish(event)

    deps.events.publish = publish_noting_the_trace  # type: ignore[method-assign]
    headers = {"Content-Type": "application/json"} | as_party("/orders")
    body = json.dumps(load_event("place_order_request") | {"flow": "choreography"})
    answer = client.http.post("/orders", headers=headers, body=body).json_body
    order_trace = answer["trace_header"]
    assert deps.orders.get(answer["order_id"]).trace_header == order_trace
    cancel = f"/orders/{answer['order_id']}/cancel"
    assert client.http.post(cancel, headers=headers, body="").status_code == 202
    # Placing and cancelling were two requests, and both published in the order's trace.
    assert seen == [order_trace, order_trace]
