"""Unit tests: the API drives a durable order as it drives an orchestrated one, through the
durable function's Workflow port; a deployment without the durable function refuses it
clearly; the durable Workflow adapter maps Lambda's answers."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import settings
from chalicelib.adapters.durable_functions import (
    DurableFunctionWorkflow,
    execution_timeout_seconds,
)
from chalicelib.orders import steps
from chalicelib.orders.errors import DependencyUnavailableError, WorkflowNotWaitingError
from chalicelib.orders.timeline import StateTransition
from deploy import template
from deploy.stages import Deployment, DeployPath, load_stage
from localdev import costs, durable_runner
from localdev.billing import Usage
from tests.unit.conftest import as_party, order_request
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}


def post(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.http.post(path, headers=JSON | as_party(path), body=json.dumps(body or {}))


def awaiting_restaurant(client: Client, deps: FakeDependencies) -> str:
    response = post(client, "/orders", order_request("durable"))
    assert response.status_code == 202, response.body
    order_id = str(response.json_body["order_id"])
    deps.orders.save_callback_token(order_id, "callback-1")  # as the wait's submitter does
    steps.notify_restaurant(order_id, deps.ports)
    return order_id


def test_a_durable_order_starts_the_durable_function_not_the_state_machine(
    client: Client, deps: FakeDependencies
) -> None:
    response = post(client, "/orders", order_request("durable"))
    assert response.status_code == 202
    assert response.json_body["flow"] == "durable"
    assert deps.durable_workflow.started == [response.json_body["order_id"]]
    assert deps.workflow.started == []


def test_accept_records_the_decision_then_completes_the_callback(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps)
    response = post(client, f"/orders/{order_id}/accept")
    assert response.status_code == 202
    assert deps.durable_workflow.resumed == [(order_id, {"decision": "accepted"})]
    assert deps.orders.get(order_id).decision is not None


def test_racing_answers_one_202_the_other_409_decision_taken(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps)
    assert post(client, f"/orders/{order_id}/reject", {"reason": "closed"}).status_code == 202
    late = post(client, f"/orders/{order_id}/accept")
    assert late.status_code == 409
    assert late.json_body["code"] == "decision_taken"
    assert late.json_body["decision"]["outcome"] == "rejected"


def test_a_stage_without_the_durable_function_refuses_durable_orders_with_400(
    client: Client, deps: FakeDependencies
) -> None:
    deps.durable_deployed = False
    response = post(client, "/orders", order_request("durable"))
    assert response.status_code == 400
    assert response.json_body["field"] == "flow"
    assert "not deployed" in response.json_body["message"]
    assert deps.orders.orders == {}


def test_weights_that_choose_durable_where_it_is_not_deployed_answer_503(
    client: Client, deps: FakeDependencies
) -> None:
    deps.durable_deployed = False
    deps.flow_weights.document = {"choreography": 0, "orchestration": 0, "durable": 1}
    body = {k: v for k, v in order_request("durable").items() if k != "flow"}
    response = post(client, "/orders", body)
    assert response.status_code == 503
    assert response.json_body["code"] == "flow_weights_invalid"
    assert deps.orders.orders == {}


def test_a_durable_timeline_weaves_in_the_durable_functions_operations(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps)
    at = datetime.fromisoformat(deps.orders.get(order_id).placed_at) + timedelta(seconds=1)
    deps.durable_workflow.history[order_id] = [StateTransition(at, "NotifyRestaurant entered")]
    response = client.http.get(f"/orders/{order_id}/timeline", headers=as_party("/orders"))
    assert response.status_code == 200
    assert response.json_body["flow"] == "durable"
    shown = [(s["service"], s["step"]) for s in response.json_body["steps"]]
    assert ("order-flow durable function", "NotifyRestaurant entered") in shown
    assert deps.workflow.history == {}  # the state machine was not asked


class LambdaClient:
    """The Lambda client's durable calls, answering as told (the pinned botocore has no model
    of them, so botocore's Stubber cannot stand in)."""

    def __init__(self, error_code: str | None = None, executions: tuple[str, ...] = ()) -> None:
        self.error_code = error_code
        self.executions = list(executions)  # the names of the executions started
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, request))
        if self.error_code is not None:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "no"}}, operation)
        return {}

    def invoke(self, **request: Any) -> dict[str, Any]:
        return self._answer("Invoke", request)

    def send_durable_execution_callback_success(self, **request: Any) -> dict[str, Any]:
        return self._answer("SendDurableExecutionCallbackSuccess", request)

    def list_durable_executions_by_function(self, **request: Any) -> dict[str, Any]:
        self._answer("ListDurableExecutionsByFunction", request)
        name = request["DurableExecutionName"]
        found = [{"DurableExecutionArn": f"arn:{name}", "Status": "RUNNING"}]
        return {"DurableExecutions": found if name in self.executions else []}


def workflow(client: LambdaClient) -> DurableFunctionWorkflow:
    return DurableFunctionWorkflow("orders-flow:live", client, 600, 7200)


def test_start_names_the_execution_after_the_order_and_passes_the_deadlines() -> None:
    client = LambdaClient()
    workflow(client).start("o-1")
    [(_, request)] = client.calls
    assert request["DurableExecutionName"] == "o-1"
    assert request["InvocationType"] == "Event"
    assert json.loads(request["Payload"]) | {"trace_header": ""} == {
        "order_id": "o-1",
        "restaurant_deadline_seconds": 600,
        "delivery_deadline_seconds": 7200,
        "trace_header": "",
    }


def test_starting_twice_is_harmless() -> None:
    workflow(LambdaClient("DurableExecutionAlreadyStartedException")).start("o-1")


@pytest.mark.parametrize("code", ["CallbackTimeoutException", "ResourceNotFoundException"])
def test_a_callback_no_longer_waiting_is_workflow_not_waiting(
    deps: FakeDependencies, code: str
) -> None:
    order = _order_with_callback(deps)
    with pytest.raises(WorkflowNotWaitingError):
        workflow(LambdaClient(code)).resume(order, {"decision": "accepted"})


def test_an_unreachable_lambda_is_dependency_unavailable_after_retries(
    deps: FakeDependencies,
) -> None:
    client = LambdaClient("ServiceException")
    with pytest.raises(DependencyUnavailableError):
        workflow(client).resume(_order_with_callback(deps), {"decision": "accepted"})
    assert len(client.calls) == 3


def test_resume_sends_the_answer_to_the_saved_callback(deps: FakeDependencies) -> None:
    client = LambdaClient()
    workflow(client).resume(_order_with_callback(deps), {"decision": "accepted"})
    assert client.calls == [
        (
            "SendDurableExecutionCallbackSuccess",
            {"CallbackId": "callback-1", "Result": b'{"decision": "accepted"}'},
        )
    ]


def _order_with_callback(deps: FakeDependencies) -> Any:
    steps.place_order(
        steps.PlaceOrder(
            "o-1", "c-1", "r-1", (steps.LineItem("Curry", 1, 1300),), steps.Flow.DURABLE, "f"
        ),
        deps.ports,
    )
    deps.orders.save_callback_token("o-1", "callback-1")
    return deps.orders.get("o-1")


# One accepted-and-delivered order's execution history, as AWS's local runner answered it
# (GetDurableExecutionHistory with its execution data).
HISTORY = json.loads(
    (Path(__file__).parents[1] / "events" / "durable_execution_history.json").read_text()
)


class FakeRunner(http.server.BaseHTTPRequestHandler):
    """AWS's local runner's routes the project calls directly: its start route (keeping what it
    was sent), and, for one execution of order ``o-1`` of function ``orders-flow``,
    ListDurableExecutionsByFunction and GetDurableExecutionHistory."""

    started: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.started.append({"path": self.path, "body": json.loads(body)})
        self._answer(201, {"ExecutionArn": "arn:execution"})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/2025-12-01/functions/orders-flow/durable-executions":
            found = query["DurableExecutionName"] == ["o-1"]
            self._answer(200, {"DurableExecutions": [{"DurableExecutionArn": "a/b"}] * found})
        elif url.path == "/2025-12-01/durable-executions/a%2Fb/history":
            assert query["IncludeExecutionData"] == ["true"]
            self._answer(200, HISTORY)
        else:
            self.send_error(404)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        answer = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def runner() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    FakeRunner.started = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRunner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakeRunner.started
    server.shutdown()
    server.server_close()


def test_a_local_stage_starts_the_execution_at_the_runners_start_route_not_by_invoke(
    runner: tuple[str, list[dict[str, Any]]],
) -> None:
    endpoint, started = runner
    client = LambdaClient()
    DurableFunctionWorkflow("orders-flow", client, 20, 45, runner_endpoint=endpoint).start("o-1")
    [start] = started
    assert start["path"] == "/start-durable-execution"
    assert start["body"]["FunctionName"] == "orders-flow"
    assert start["body"]["ExecutionName"] == "o-1"
    # What DurableConfig gives in AWS: the execution's timeout, as the SAM path declares it.
    assert start["body"]["ExecutionTimeoutSeconds"] == execution_timeout_seconds(20, 45)
    assert json.loads(start["body"]["Input"])["restaurant_deadline_seconds"] == 20
    assert "Invoke" not in [operation for operation, _ in client.calls]


def test_the_runner_is_not_asked_to_start_an_execution_already_started(
    runner: tuple[str, list[dict[str, Any]]],
) -> None:
    # The runner does not refuse a second execution of one name, as Lambda does.
    endpoint, started = runner
    client = LambdaClient(executions=["o-1"])
    DurableFunctionWorkflow("orders-flow", client, 20, 45, runner_endpoint=endpoint).start("o-1")
    assert started == []


def test_an_unreachable_runner_is_dependency_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(DependencyUnavailableError):
        DurableFunctionWorkflow("f", LambdaClient(), 20, 45, runner_endpoint=closed).start("o-1")


def test_a_local_sam_stage_points_its_functions_lambda_clients_at_its_clouds_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4605")
    local = Deployment(load_stage("local"), DeployPath.SAM)
    environment = template.function_environment(local)
    assert environment["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:5605"
    assert environment[settings.ORDER_FLOW_DURABLE_RUNNER] == "http://127.0.0.1:5605"
    assert environment[settings.ORDER_FLOW_DURABLE_FUNCTION] == template.durable_function_name(
        local
    )
    # An ordinary function in the local cloud: no DurableConfig nor alias there.
    declared = template._durable_function(local)[template.DURABLE_FUNCTION_ID]["Properties"]
    assert "DurableConfig" not in declared and "AutoPublishAlias" not in declared

    # An AWS stage's Lambda has the durable API itself: nothing points elsewhere.
    aws = template.function_environment(Deployment(load_stage("dev"), DeployPath.SAM))
    assert "AWS_ENDPOINT_URL_LAMBDA" not in aws
    assert settings.ORDER_FLOW_DURABLE_RUNNER not in aws


def test_the_runner_counts_each_operation_once_each_invocation_and_the_results_bytes(
    runner: tuple[str, list[dict[str, Any]]],
) -> None:
    endpoint, _ = runner
    usage = durable_runner.durable_usage(endpoint, "orders-flow", ["o-1", "never-placed"])
    # 2 waits (a context, its callback, its submitter step each) and 2 steps; the start and a
    # replay after each callback; what the operations recorded as their results.
    assert (usage.executions, usage.operations, usage.invocations) == (1, 8, 3)
    payloads = [
        event[f"{event['EventType']}Details"]["Result"]["Payload"]
        for event in HISTORY["Events"]
        if "Result" in (event.get(f"{event['EventType']}Details") or {})
    ]
    assert usage.data_bytes == sum(len(payload.encode()) for payload in payloads) > 0


def test_the_durable_style_is_priced_with_its_operations_and_checkpointed_data() -> None:
    prices = costs.load_prices()
    usage = Usage(orders=2, api_requests=6, lambda_invocations=22)
    priced = costs.durable_measured(usage, 8.0, 1024.0, retention_days=30, prices=prices)
    items = priced["line_items"]
    assert items["durable_operations"] == pytest.approx(
        8.0 * prices["lambda_durable_operation"].per_unit * costs.MILLION
    )
    assert items["durable_data_retained"] == pytest.approx(
        1024.0 / costs.GB * prices["lambda_durable_data_retained"].per_unit * costs.MILLION
    )
    assert items["api_gateway"] == costs.cost_per_million(usage, prices)["api_gateway"]
    assert items["total"] == pytest.approx(sum(v for k, v in items.items() if k != "total"))
    # The durable prices come from secondary sources: the result says so.
    assert len(priced["unverified_prices"]) == len(costs.DURABLE_PRICES)
