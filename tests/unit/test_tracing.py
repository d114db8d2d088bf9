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
from localdev.xray_daemon import every_entity
from tests.unit.conftest import as_party, load_event, onward_traces_of_publishes, place_through_api
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


def test_the_executor_invokes_an_sqs_batch_in_a_trace_of_its_own_as_aws_does() -> None:
    # Even a batch of one trace: AWS links the invocation to it; the function puts each
    # record's work in its trace (in_order_trace).
    xray = executor_xray()
    record = {"eventSource": "aws:sqs", "attributes": {"AWSTraceHeader": TRACE}}
    assert xray.carried_trace_header(json.dumps({"Records": [record, record]})) is None


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
    seen = onward_traces_of_publishes(deps)
    answer = place_through_api(client, "choreography")
    headers = {"Content-Type": "application/json"} | as_party("/orders")
    order_trace = answer["trace_header"]
    assert deps.orders.get(answer["order_id"]).trace_header == order_trace
    cancel = f"/orders/{answer['order_id']}/cancel"
    assert client.http.post(cancel, headers=headers, body="").status_code == 202
    # Placing and cancelling were two requests, and both published in the order's trace.
    assert seen == [order_trace, order_trace]


# --- every record in its order's trace ---------------------------------------------------

INVOCATION = "Root=1-aaaaaaaa-000000000000000000000000;Parent=1111111111111111;Sampled=1"
ORDER_TRACES = {
    "o-1": "Root=1-aaaaaaaa-111111111111111111111111;Parent=2222222222222222;Sampled=1",
    "o-2": "Root=1-aaaaaaaa-222222222222222222222222;Parent=3333333333333333;Sampled=1",
    "o-3": "Root=1-aaaaaaaa-333333333333333333333333;Parent=4444444444444444;Sampled=1",
}

# One SQS batch as Lambda hands it to the restaurant notifier (one invocation, one trace of its
# own): o-1 and o-2 placed, o-3 never stored (its record fails), each message in its order's
# trace. What the handler reads, it reads in whatever trace is current: noted per read.
BATCH_SCRIPT = """
import json, os, sys
from chalicelib import bootstrap, tracing
assert tracing.configure(), "tracing is on in Lambda"
from aws_xray_sdk.core import xray_recorder
from chalice.test import Client
from tests.unit.conftest import app
from tests.unit.fakes import FakeDependencies
from tests.unit.test_choreography_handlers import placed
from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from tests.unit.conftest import UNIT_PREFIX

traces = json.loads(sys.argv[1])
deps = FakeDependencies()
bootstrap.install(deps)
bodies = [placed(deps, "o-1"), placed(deps, "o-3"), placed(deps, "o-2")]
del deps.orders.orders["o-3"]
seen = []
get = deps.orders.get
def noting_the_trace(order_id):
    seen.append([order_id, os.environ["_X_AMZN_TRACE_ID"]])
    return get(order_id)
deps.orders.get = noting_the_trace
with Client(app) as client:
    queue = RESTAURANT_NOTIFIER.queue_for(UNIT_PREFIX)
    event = client.events.generate_sqs_event(bodies, queue_name=queue)
    for index, (record, order_id) in enumerate(zip(event["Records"], ["o-1", "o-3", "o-2"])):
        record["messageId"] = f"message-{index}"
        record["attributes"]["AWSTraceHeader"] = traces[order_id]
    answer = client.lambda_.invoke("restaurant_notifier", event).payload
entity = xray_recorder.get_trace_entity()
print(json.dumps({
    "answer": answer, "seen": seen, "after": os.environ["_X_AMZN_TRACE_ID"],
    "entity": [entity.trace_id, entity.id],
}))
"""


def lambda_environment(daemon_port: int) -> dict[str, str]:
    """A function's environment in Lambda with active tracing, in an invocation of INVOCATION."""
    return os.environ | {
        "LAMBDA_TASK_ROOT": str(PROJECT),
        "AWS_LAMBDA_FUNCTION_NAME": "orders-unit-restaurant_notifier",
        "_X_AMZN_TRACE_ID": INVOCATION,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon_port}",
        "ORDERS_TRACING": "on",
    }


def run_in_lambda(script: str, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``script`` as a function in Lambda would run, a daemon listening; what it printed
    last (JSON), and every document it sent to the daemon."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=PROJECT,
            env=lambda_environment(daemon.getsockname()[1]),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        documents = received(daemon)
    return json.loads(done.stdout.splitlines()[-1]), documents


def received(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every document sent to the daemon so far (the sender has exited: all are queued)."""
    daemon.setblocking(False)
    documents = []
    while True:
        try:
            datagram = daemon.recv(65535)
        except BlockingIOError:
            return documents
        header, _, body = datagram.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def root(header: str) -> str:
    return header.split(";")[0].removeprefix("Root=")


def test_each_record_of_a_batch_mixing_orders_is_traced_in_its_own_orders_trace() -> None:
    # GIVEN a daemon listening, and an SQS batch mixing three orders' messages (BATCH_SCRIPT)
    # WHEN the handler processes the batch in one invocation of a trace of its own
    outcome, documents = run_in_lambda(BATCH_SCRIPT, json.dumps(ORDER_TRACES))
    assert outcome["answer"] == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}

    # THEN each record had a segment of its own, in its order's trace, parented to the header
    segments = {d["trace_id"]: d for d in documents if d.get("type") != "subsegment"}
    assert set(segments) == {root(header) for header in ORDER_TRACES.values()}
    for order_id, header in ORDER_TRACES.items():
        segment = segments[root(header)]
        assert segment["name"] == "orders-unit-restaurant_notifier"
        assert segment["origin"] == "AWS::Lambda::Function"
        assert segment["parent_id"] == header.split(";")[1].removeprefix("Parent=")
        assert segment["in_progress"] is False
        assert ("fault" in segment) is (order_id == "o-3")  # the record that failed
    assert not any(root(INVOCATION) == d["trace_id"] for d in every_entity(documents))

    # AND each step's subsegment hangs under its own order's segment, nothing under another
    steps = [d for d in every_entity(documents) if d.get("name") == "notify_restaurant"]
    assert sorted(d["annotations"]["order_id"] for d in steps) == ["o-1", "o-2"]
    for step in steps:
        own = segments[root(ORDER_TRACES[step["annotations"]["order_id"]])]
        assert (step["trace_id"], step["parent_id"]) == (own["trace_id"], own["id"])

    # AND whatever a record read, it read in its own order's trace, under its segment
    for order_id, header in outcome["seen"]:
        own = segments[root(ORDER_TRACES[order_id])]
        assert header == f"Root={own['trace_id']};Parent={own['id']};Sampled=1"
    # (one read per record: the check's read is the step's)
    assert sorted(order_id for order_id, _ in outcome["seen"]) == ["o-1", "o-2", "o-3"]

    # AND after the batch (the failing record included) the invocation's context is back
    assert outcome["after"] == INVOCATION
    assert outcome["entity"] == ["1-aaaaaaaa-000000000000000000000000", "1111111111111111"]


RESTORE_SCRIPT = """
import json, os
from chalicelib import tracing
assert tracing.configure()
from aws_xray_sdk.core import xray_recorder
order = "Root=1-aaaaaaaa-111111111111111111111111;Sampled=1"
inside = []
for attempt in range(2):  # twice, the same order: the second gets a segment of its own too
    try:
        with tracing.in_order_trace(order, "orders-unit-relay"):
            inside.append(os.environ["_X_AMZN_TRACE_ID"])
            with tracing.traced("relay", "o-1", "choreography"):
                raise RuntimeError("publish failed")
    except RuntimeError:
        pass
entity = xray_recorder.get_trace_entity()
print(json.dumps({"inside": inside, "after": os.environ["_X_AMZN_TRACE_ID"],
                  "entity": [entity.trace_id, entity.id]}))
"""


def test_a_record_that_fails_is_traced_and_gives_the_invocations_context_back() -> None:
    # GIVEN an order's trace stored without a parent (how an order stores it)
    # WHEN its record fails twice, inside the record's segment
    outcome, documents = run_in_lambda(RESTORE_SCRIPT)
    # THEN the invocation's context is back after each
    assert outcome["after"] == INVOCATION
    assert outcome["entity"] == ["1-aaaaaaaa-000000000000000000000000", "1111111111111111"]
    # AND each attempt was a root segment of the order's trace, with the error, and its step
    # subsegment (with the error too) under it
    segments = [d for d in documents if d.get("type") != "subsegment"]
    assert len(segments) == 2 and segments[0]["id"] != segments[1]["id"]
    for segment, header in zip(segments, outcome["inside"], strict=True):
        assert segment["trace_id"] == "1-aaaaaaaa-111111111111111111111111"
        assert "parent_id" not in segment
        assert segment["fault"] is True
        assert header == f"Root={segment['trace_id']};Parent={segment['id']};Sampled=1"
    steps = [d for d in every_entity(documents) if d.get("name") == "relay"]
    assert [step["parent_id"] for step in steps] == [segment["id"] for segment in segments]
    for segment, step in zip(segments, steps, strict=True):
        error = step["cause"]["exceptions"][0]
        assert error["message"] == "publish failed"
        assert segment["cause"] == error["id"]  # the SDK names an error recorded below it


CONTEXT_SCRIPT = """
import json, os
from aws_xray_sdk.core import lambda_launcher
from chalicelib import tracing
assert tracing.configure()
from aws_xray_sdk.core import xray_recorder
parsed = []
parse = lambda_launcher.TraceHeader.from_header_str
def counting(header):
    parsed.append(header)
    return parse(header)
lambda_launcher.TraceHeader.from_header_str = counting
order = "Root=1-aaaaaaaa-111111111111111111111111;Sampled=1"
with tracing.in_order_trace(order, "orders-unit-relay"):
    with tracing.traced("relay", "o-1", "choreography"):
        for call in range(3):  # what each patched AWS call does
            with xray_recorder.in_subsegment(f"call-{call}"):
                pass
one_record = len(parsed)
next_invocation = "Root=1-bbbbbbbb-000000000000000000000000;Parent=5555555555555555;Sampled=1"
os.environ["_X_AMZN_TRACE_ID"] = next_invocation
entity = xray_recorder.get_trace_entity()
print(json.dumps({"one_record": one_record, "next": [entity.trace_id, entity.id]}))
"""


def test_the_lambda_context_parses_the_trace_header_only_when_it_changed() -> None:
    # GIVEN Lambda's environment, a daemon listening
    # WHEN a record is worked on in its order's trace: a step with three AWS calls in it
    outcome, documents = run_in_lambda(CONTEXT_SCRIPT)
    # THEN the same trace was sent: the record's segment, its step, the calls under the step
    names = sorted(d["name"] for d in every_entity(documents))
    assert names == ["call-0", "call-1", "call-2", "orders-unit-relay", "relay"]
    # AND the invocation's header was parsed only when it changed (into the order's trace and
    # back) and once to confirm each, not on each of the SDK's ~26 look-ups of the entity
    assert outcome["one_record"] <= 6
    # AND the next invocation's header is still seen at once: its own segment
    assert outcome["next"] == ["1-bbbbbbbb-000000000000000000000000", "5555555555555555"]


WORK_SCRIPT = """
import json, sys
from chalicelib import tracing
assert tracing.configure()
from aws_xray_sdk.core import xray_recorder

def fail_deep_down(depth):  # an error with a full stack (the SDK keeps 10 frames)
    if depth == 0:
        raise RuntimeError("the call failed: " + "x" * 200)
    fail_deep_down(depth - 1)

def step_with_calls(calls, fail=False):
    with tracing.traced("accept_order", "o-1", "orchestration"):
        for call in range(calls):  # what each patched AWS call does
            try:
                with xray_recorder.in_subsegment(f"call-{call}"):
                    if fail:
                        fail_deep_down(12)
            except RuntimeError:
                pass

calls, fail = int(sys.argv[1]), sys.argv[2] == "fail"
step_with_calls(calls, fail)  # a task: its step in the invocation's trace
with tracing.in_order_trace("Root=1-aaaaaaaa-111111111111111111111111;Sampled=1", "orders-unit"):
    step_with_calls(calls, fail)  # a record, in its order's trace
print(json.dumps({}))
"""


def test_each_step_and_each_record_leaves_in_one_datagram_with_its_calls_in_it() -> None:
    # GIVEN Lambda's environment, a daemon listening
    # WHEN a task's step makes three AWS calls in the invocation's trace, and then a record in
    # its order's trace does the same
    _, documents = run_in_lambda(WORK_SCRIPT, "3", "ok")
    # THEN two datagrams left, not one per subsegment: the step with its calls in it, and the
    # record's segment with its step and the step's calls in it
    step, record = documents
    assert step["name"] == "accept_order" and step["parent_id"] == "1111111111111111"
    assert [call["name"] for call in step["subsegments"]] == ["call-0", "call-1", "call-2"]
    assert record["name"] == "orders-unit" and record["trace_id"].endswith("1111111111")
    (record_step,) = record["subsegments"]
    assert record_step["annotations"]["order_id"] == "o-1"
    assert [call["parent_id"] for call in record_step["subsegments"]] == [record_step["id"]] * 3
    # AND nothing was left open or sent twice
    assert all(not entity["in_progress"] for entity in every_entity(documents))
    assert len({entity["id"] for entity in every_entity(documents)}) == 9


def test_work_with_many_failing_calls_streams_in_datagrams_the_daemon_accepts() -> None:
    # GIVEN a step making far more AWS calls than a segment holds, each failing with its stack
    calls = tracing.HELD_SUBSEGMENTS + 5
    # WHEN it runs as a task and as a record
    _, documents = run_in_lambda(WORK_SCRIPT, str(calls), "fail")
    # THEN every call arrived, each once, with its error, in datagrams under the UDP limit
    failed = [e for e in every_entity(documents) if e.get("name", "").startswith("call-")]
    assert len(failed) == len({e["id"] for e in failed}) == 2 * calls
    assert all(e["cause"]["exceptions"][0]["type"] == "RuntimeError" for e in failed)
    sizes = [len(json.dumps(document)) for document in documents]
    assert max(sizes) < 64 * 1024 - 100  # the protocol header and the datagram's own bytes
