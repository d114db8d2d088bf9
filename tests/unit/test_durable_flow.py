"""The durable style's flow (chalicelib/entrypoints/durable.py), every path, run by AWS's own
in-process runner for durable functions (aws-durable-execution-sdk-python-testing): its
checkpoints, replays, retries and callback timeouts are the SDK's, no AWS involved.

The steps are the real ones, on the in-memory fakes; answers come the way the API sends them:
the orchestration coordinator records the decision, then hands it over through the durable
Workflow adapter (chalicelib/adapters/durable_functions.py), whose Lambda client here is the
runner's callback API.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aws_durable_execution_sdk_python.execution import InvocationStatus
from aws_durable_execution_sdk_python_testing import (
    DurableFunctionTestResult,
    DurableFunctionTestRunner,
)

from chalicelib import bootstrap
from chalicelib.adapters.durable_functions import DurableFunctionWorkflow, _transition
from chalicelib.coordination import OrchestrationCoordinator
from chalicelib.entrypoints.durable import order_flow
from chalicelib.orders import steps
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import DecisionTakenError, DependencyUnavailableError
from chalicelib.orders.model import Flow, LineItem, Order, OrderStatus
from deploy import template
from localdev import costs
from tests.unit.fakes import FakeDependencies, FakeOrderRepository

# Long enough that no wait times out while a test answers it (the runner's clock is real).
LONG_WAIT_SECONDS = 600
# The execution's own limit: past every wait (with skip_time the runner would jump to it).
EXECUTION_TIMEOUT_SECONDS = 4 * LONG_WAIT_SECONDS
# How long a test waits for the flow to reach a point before it fails (polled, not slept).
TIME_LIMIT_SECONDS = 20


class RunnerCallbacks:
    """The Lambda client's callback API, answered by the in-process runner."""

    def __init__(self, runner: DurableFunctionTestRunner) -> None:
        self.runner = runner

    def send_durable_execution_callback_success(self, CallbackId: str, Result: bytes) -> None:  # noqa: N803 - boto3's names
        self.runner.send_callback_success(CallbackId, Result)


@dataclass
class Execution:
    deps: FakeDependencies
    runner: DurableFunctionTestRunner
    arn: str
    order_id: str

    @property
    def api(self) -> OrchestrationCoordinator:
        """What the API does for a durable order (the same coordinator as orchestration)."""
        workflow = DurableFunctionWorkflow(
            "order-flow", RunnerCallbacks(self.runner), LONG_WAIT_SECONDS, LONG_WAIT_SECONDS
        )
        return OrchestrationCoordinator(self.deps.ports, workflow)

    def order(self) -> Order:
        return self.deps.orders.get(self.order_id)

    def reaches(self, holds: Callable[[Order], bool]) -> Order:
        limit = time.monotonic() + TIME_LIMIT_SECONDS
        while not holds(order := self.order()):
            assert time.monotonic() < limit, f"the flow stopped at {order.status}"
            time.sleep(0.02)
        return order

    def invocations(self) -> int:
        """How many times the function was invoked and returned so far (each after the first
        replays the flow from its start)."""
        history = self.runner.get_execution_history(self.arn).events
        return sum(event.event_type == "InvocationCompleted" for event in history)

    def suspended(self, times: int) -> None:
        """Wait until the function returned ``times`` times (suspended at a wait, unpaid)."""
        limit = time.monotonic() + TIME_LIMIT_SECONDS
        while self.invocations() < times:
            assert time.monotonic() < limit, "the function never suspended"
            time.sleep(0.02)

    def accepted_and_delivered_after_suspending(self) -> DurableFunctionTestResult:
        """Accept once the function suspended at the restaurant's wait, confirm the delivery
        once it suspended at the delivery's: each answer resumes it with a replay."""
        waiting = self.waiting_for_restaurant()
        self.suspended(1)
        self.api.accept(waiting)
        self.suspended(2)
        self.api.complete(self.order())
        return self.result()

    def waiting_for_restaurant(self) -> Order:
        return self.reaches(lambda order: order.status is OrderStatus.RESTAURANT_NOTIFIED)

    def result(self) -> DurableFunctionTestResult:
        return self.runner.wait_for_result(self.arn, timeout=TIME_LIMIT_SECONDS)

    def told_customer(self) -> str:
        told = self.order().recorded(steps.EventType.USER_NOTIFIED)
        assert told is not None, "the customer was told"
        return str(told.data["outcome"])


def place(deps: FakeDependencies, order_id: str = "o-1") -> str:
    steps.place_order(
        steps.PlaceOrder(order_id, "c-1", "r-1", (LineItem("Curry", 1, 1300),), Flow.DURABLE, "f"),
        deps.ports,
    )
    return order_id


@contextmanager
def durable_run(
    deps: FakeDependencies,
    *,
    order_id: str | None = None,
    skip_time: bool = False,
    restaurant_deadline_seconds: int = LONG_WAIT_SECONDS,
    delivery_deadline_seconds: int = LONG_WAIT_SECONDS,
) -> Iterator[Execution]:
    """The flow of the order (placed now, unless ``order_id`` names one) started as the relay
    starts it. ``skip_time``: the runner jumps over retry delays (a callback's timeout is
    real time in the runner: a test that needs one sets a deadline of a second)."""
    order_id = order_id or place(deps)
    with DurableFunctionTestRunner(
        handler=order_flow, skip_time=skip_time, poll_interval=0.02
    ) as runner:
        arn = runner.run_async(
            input=json.dumps(
                {
                    "order_id": order_id,
                    "restaurant_deadline_seconds": restaurant_deadline_seconds,
                    "delivery_deadline_seconds": delivery_deadline_seconds,
                }
            ),
            execution_name=order_id,
            execution_timeout=EXECUTION_TIMEOUT_SECONDS,
        )
        yield Execution(deps, runner, arn, order_id)


def event_types(deps: FakeDependencies) -> list[str]:
    return [event for event in deps.events.types() if event != "order_placed"]


def test_an_accepted_order_is_told_delivered_and_completed_by_the_same_steps(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps) as run:
        run.api.accept(run.waiting_for_restaurant())
        run.api.complete(run.reaches(lambda order: order.status is OrderStatus.USER_NOTIFIED))
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    assert run.order().status is OrderStatus.COMPLETED
    assert event_types(deps) == [
        "restaurant_notified",
        "order_accepted",
        "user_notified",
        "order_completed",
    ]
    assert {event.flow for event in deps.events.published} == {"durable"}


def test_the_cost_model_counts_the_operations_and_invocations_the_flow_makes(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps) as run:
        result = run.accepted_and_delivered_after_suspending()
    paper = inspect.signature(costs.durable_functions_on_paper).parameters
    assert len(result.get_all_operations()) == paper["operations_per_order"].default
    assert run.invocations() == paper["durable_invocations"].default
    assert paper["retention_days"].default == template.DURABLE_RETENTION_DAYS


def test_a_rejected_order_keeps_its_reason_and_the_customer_is_told(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps) as run:
        run.api.reject(run.waiting_for_restaurant(), "out of curry")
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    assert run.order().status is OrderStatus.REJECTED
    rejected = run.order().recorded(steps.EventType.ORDER_REJECTED)
    assert rejected is not None and rejected.data["reason"] == "out of curry"
    assert run.told_customer() == "rejected"


def test_a_customer_cancelling_ends_the_wait_and_the_customer_is_told(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps) as run:
        run.api.cancel(run.waiting_for_restaurant())
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    cancelled = run.order().recorded(steps.EventType.ORDER_CANCELLED)
    assert cancelled is not None and cancelled.data["reason"] == "customer_request"
    assert run.told_customer() == "cancelled"


def test_racing_answers_the_first_wins_the_other_is_refused_naming_it(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps) as run:
        waiting = run.waiting_for_restaurant()
        run.api.accept(waiting)
        with pytest.raises(DecisionTakenError) as refused:
            run.api.reject(waiting, "too late")
        run.api.complete(run.reaches(lambda order: order.status is OrderStatus.USER_NOTIFIED))
        run.result()
    assert refused.value.decision.outcome.value == "accepted"
    assert run.order().status is OrderStatus.COMPLETED
    assert run.order().recorded(steps.EventType.ORDER_REJECTED) is None


def test_no_answer_by_the_restaurants_deadline_cancels_the_order(deps: FakeDependencies) -> None:
    order_id = place(deps)
    deps.at_deadline(order_id)  # the domain's clock: the stored deadline has come
    with durable_run(deps, order_id=order_id, restaurant_deadline_seconds=1) as run:
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    cancelled = run.order().recorded(steps.EventType.ORDER_CANCELLED)
    assert cancelled is not None and cancelled.data["reason"] == "restaurant_timeout"
    assert run.told_customer() == "cancelled"
    assert result.get_step("CancelAtDeadline").status.value == "SUCCEEDED"


def test_no_confirmation_by_the_delivery_deadline_ends_the_order_undelivered(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps, delivery_deadline_seconds=1) as run:
        run.api.accept(run.waiting_for_restaurant())
        run.reaches(lambda order: order.status is OrderStatus.USER_NOTIFIED)
        deps.at_deadline(run.order_id)  # the stored delivery deadline has come
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    assert run.order().status is OrderStatus.UNDELIVERED
    assert event_types(deps)[-1] == "order_undelivered"


class UnreachableCallbackStore(FakeOrderRepository):
    """The table refuses the callback's id: telling the restaurant cannot start."""

    def save_callback_token(self, order_id: str, token: str) -> None:
        raise DependencyUnavailableError("the orders table cannot be reached")


def test_a_step_failing_for_good_is_compensated_and_the_execution_fails() -> None:
    deps = FakeDependencies(orders=UnreachableCallbackStore())
    bootstrap.install(deps)
    try:
        with durable_run(deps, skip_time=True) as run:
            result = run.result()
    finally:
        bootstrap.install(None)
    assert result.status is InvocationStatus.FAILED
    assert result.error is not None and "OrderWorkflowFailedError" in str(result.error.type)
    cancelled = run.order().recorded(steps.EventType.ORDER_CANCELLED)
    assert cancelled is not None and cancelled.data["reason"] == "workflow_failed"
    assert run.told_customer() == "cancelled"
    submitter = result.get_context("NotifyRestaurant").get_step("NotifyRestaurant submitter")
    assert submitter.attempt is not None and submitter.attempt > 1  # retried before it gave up


class CountingCallbackStore(FakeOrderRepository):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[str] = []

    def save_callback_token(self, order_id: str, token: str) -> None:
        self.saved.append(token)
        super().save_callback_token(order_id, token)


def test_a_replay_runs_no_step_again_it_reads_their_checkpoints() -> None:
    deps = FakeDependencies(orders=CountingCallbackStore())
    bootstrap.install(deps)
    try:
        with durable_run(deps) as run:
            result = run.accepted_and_delivered_after_suspending()
            history = run.runner.get_execution_history(run.arn).events
    finally:
        bootstrap.install(None)
    assert result.status is InvocationStatus.SUCCEEDED
    assert run.invocations() == 3  # the third replayed both waits and every step before
    assert len(deps.orders.saved) == 2  # each wait's submitter ran once, not once per replay
    steps_run = [event.name for event in history if event.event_type == "StepStarted"]
    assert steps_run.count("AcceptOrder") == 1
    assert steps_run.count("CompleteOrder") == 1


def test_the_timeline_names_the_flows_steps_and_waits(deps: FakeDependencies) -> None:
    with durable_run(deps) as run:
        run.api.reject(run.waiting_for_restaurant(), "closed")
        run.result()
        history = run.runner.get_execution_history(run.arn).events
    seen = [
        {"EventType": e.event_type, "EventTimestamp": e.event_timestamp, "Name": e.name}
        | ({"ParentId": e.parent_id} if e.parent_id else {})
        for e in history
    ]
    shown = [step for step in map(_shown, seen) if step is not None]
    assert shown[0] == "execution started"
    assert "NotifyRestaurant entered" in shown
    assert shown[-3:] == ["NotifyUser entered", "NotifyUser exited", "execution succeeded"]


def _shown(event: dict[str, Any]) -> str | None:
    transition = _transition(event)
    return None if transition is None else transition.step


def test_a_decision_recorded_but_never_handed_over_wins_at_the_deadline(
    deps: FakeDependencies,
) -> None:
    with durable_run(deps, restaurant_deadline_seconds=1) as run:
        run.waiting_for_restaurant()
        # The API recorded the restaurant's accept; its hand-over to the wait never arrived.
        steps.decide(run.order_id, Decision(Outcome.ACCEPTED), deps.ports)
        deps.at_deadline(run.order_id)
        run.api.complete(run.reaches(lambda order: order.status is OrderStatus.USER_NOTIFIED))
        result = run.result()
    assert result.status is InvocationStatus.SUCCEEDED
    assert run.order().status is OrderStatus.COMPLETED
    assert run.order().recorded(steps.EventType.ORDER_CANCELLED) is None
