"""Unit tests: the API drives a durable order as it drives an orchestrated one, through the
durable function's Workflow port; a deployment without the durable function refuses it
clearly; the durable Workflow adapter maps Lambda's answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib.adapters.durable_functions import DurableFunctionWorkflow
from chalicelib.orders import steps
from chalicelib.orders.errors import DependencyUnavailableError, WorkflowNotWaitingError
from chalicelib.orders.timeline import StateTransition
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

    def __init__(self, error_code: str | None = None) -> None:
        self.error_code = error_code
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
