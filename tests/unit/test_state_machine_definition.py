"""Static unit tests of statemachines/order_flow.asl.json against the app that fills it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.coordination import restaurant_answered
from chalicelib.entrypoints.orchestration import TASKS
from chalicelib.orders.decision import Decision, Outcome
from tests.unit.conftest import app

ASL_PATH = Path(__file__).parents[2] / "statemachines" / "order_flow.asl.json"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}


def placeholder_of(state: dict[str, Any]) -> str:
    match = PLACEHOLDER.fullmatch(state["Parameters"]["FunctionName"])
    assert match, f"FunctionName must be a ${{Placeholder}}: {state['Parameters']['FunctionName']}"
    return match.group(1)


def test_every_placeholder_is_supplied_by_a_declared_lambda_function(asl: dict[str, Any]) -> None:
    used = set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    assert used == set(TASKS)
    declared = {function.name for function in app.pure_lambda_functions}
    assert {task.function_name for task in TASKS.values()} <= declared


def test_every_task_has_retry_for_lambda_errors_and_a_catch_all(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_TRANSIENT, name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_every_named_error_is_a_real_exception_the_task_raises(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        raised = {error.__name__ for error in TASKS[placeholder_of(state)].raises}
        clauses = state["Retry"] + state["Catch"]
        for error in (e for clause in clauses for e in clause["ErrorEquals"]):
            if error.startswith(("States.", "Lambda.")):
                continue
            assert error in raised, f"{name} names {error}, which its task never raises"


def test_every_transition_leads_to_a_state_and_every_state_is_reachable(
    asl: dict[str, Any],
) -> None:
    states = asl["States"]
    targets = {asl["StartAt"]}
    for state in states.values():
        targets.update(filter(None, [state.get("Next"), state.get("Default")]))
        targets.update(choice["Next"] for choice in state.get("Choices", []))
        targets.update(catcher["Next"] for catcher in state.get("Catch", []))
    assert targets <= set(states)
    assert set(states) <= targets


def test_waits_for_people_pass_the_token_and_the_restaurant_has_a_deadline(
    asl: dict[str, Any],
) -> None:
    waits = {n: s for n, s in tasks(asl).items() if s["Resource"].endswith(".waitForTaskToken")}
    assert set(waits) == {"NotifyRestaurant", "NotifyUserAndAwaitDelivery"}
    for state in waits.values():
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    restaurant = waits["NotifyRestaurant"]
    assert restaurant["TimeoutSecondsPath"] == "$.restaurant_deadline_seconds"
    assert any(c["ErrorEquals"] == ["States.Timeout"] for c in restaurant["Catch"])
    # The delivery has its deadline too (the sweeper enforces the same one in the choreography).
    delivery = waits["NotifyUserAndAwaitDelivery"]
    assert delivery["TimeoutSecondsPath"] == "$.delivery_deadline_seconds"
    (timeout,) = [c for c in delivery["Catch"] if c["ErrorEquals"] == ["States.Timeout"]]
    assert timeout["Next"] == "ExpireDelivery"
    assert asl["States"]["ExpireDelivery"]["End"] is True


def test_only_failures_before_the_restaurant_answered_are_compensated(asl: dict[str, Any]) -> None:
    compensated = {
        name
        for name, state in tasks(asl).items()
        if any(c["Next"] == "CancelAfterFailure" for c in state.get("Catch", []))
    }
    assert compensated == {"NotifyRestaurant"}
    assert asl["States"]["RestaurantDecision"]["Default"] == "CancelAfterFailure"


def test_dependency_failures_are_retried_by_name(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert {"DependencyUnavailableError", "ConcurrentUpdateError"} <= retried, name


def test_the_restaurant_deadline_leads_to_compensation_and_telling_the_user(
    asl: dict[str, Any],
) -> None:
    states = asl["States"]
    timeout = next(
        c for c in states["NotifyRestaurant"]["Catch"] if c["ErrorEquals"] == ["States.Timeout"]
    )
    cancel = states[timeout["Next"]]
    assert cancel["Parameters"]["Payload"]["reason"] == "restaurant_timeout"
    assert placeholder_of(cancel) == "CancelOrderFunctionArn"
    # Its task returns the decision that settled the order, as the API's answer would: a
    # decision recorded before the deadline is followed, the timeout's cancellation told.
    assert cancel["ResultPath"] == states["NotifyRestaurant"]["ResultPath"] == "$.restaurant"
    decision = states[cancel["Next"]]
    assert decision["Type"] == "Choice"
    cancelled = next(c for c in decision["Choices"] if c["StringEquals"] == "cancelled")
    assert placeholder_of(states[cancelled["Next"]]) == "NotifyUserFunctionArn"


def test_the_decisions_the_api_sends_are_the_ones_the_choice_handles(asl: dict[str, Any]) -> None:
    handled = {c["StringEquals"] for c in asl["States"]["RestaurantDecision"]["Choices"]}
    sent = {restaurant_answered(Decision(outcome))["decision"] for outcome in Outcome}
    assert handled == sent == {"accepted", "rejected", "cancelled"}
