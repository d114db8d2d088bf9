"""Every wait has a deadline and an owner; the sweeper resumes or ends what passed its own.

The domain's rules (``deadlines.due_at``, ``sweep.next_action``), the steps at a deadline
(``expire_delivery``, the restaurant told of a cancellation), the sweeper's entry point with
fakes, and the orchestrated API completing an order whose execution ended.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.entrypoints.orchestration import expire_delivery_task
from chalicelib.entrypoints.sweeper import RESERVE_MS, sweeper
from chalicelib.orders import steps
from chalicelib.orders.deadlines import MARGIN, Deadlines, due_at
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import (
    DeadlineNotReachedError,
    DeadlinePassedError,
    DependencyUnavailableError,
)
from chalicelib.orders.events import EventType
from chalicelib.orders.model import CancelReason, Flow, LineItem, Order, OrderStatus
from chalicelib.orders.sweep import SweepAction, next_action
from tests.unit.fakes import FakeDependencies
from tests.unit.test_api import awaiting_restaurant, post

DEADLINES = Deadlines(
    restaurant=timedelta(seconds=20), delivery=timedelta(seconds=90), telling=timedelta(seconds=60)
)
AFTER_EVERYTHING = timedelta(days=1)


@pytest.fixture
def deps(deps: FakeDependencies) -> FakeDependencies:
    """The installed fakes, computing deadlines as a stage with DEADLINES would."""
    deps.ports = dataclasses.replace(deps.ports, deadlines=DEADLINES)
    deps.orders.deadlines = DEADLINES
    return deps


def placed(deps: FakeDependencies, flow: Flow = Flow.CHOREOGRAPHY, order_id: str = "o-1") -> str:
    steps.place_order(
        steps.PlaceOrder(order_id, "c-1", "r-1", (LineItem("Curry", 1, 1300),), flow, "f"),
        deps.ports,
    )
    return order_id


def told_of_acceptance(
    deps: FakeDependencies, flow: Flow = Flow.CHOREOGRAPHY, order_id: str = "o-1"
) -> str:
    placed(deps, flow, order_id)
    steps.notify_restaurant(order_id, deps.ports)
    steps.accept_order(order_id, deps.ports)
    steps.notify_user(order_id, deps.ports)
    return order_id


def at(order: Order, event_type: EventType) -> datetime:
    event = order.recorded(event_type)
    assert event is not None
    return datetime.fromisoformat(event.occurred_at)


# --- due_at: the order's next deadline, per status -------------------------------------------


def test_an_order_awaiting_its_restaurant_is_due_at_the_restaurant_deadline(
    deps: FakeDependencies,
) -> None:
    order = deps.orders.get(placed(deps))
    assert due_at(order, DEADLINES) == at(order, EventType.ORDER_PLACED) + DEADLINES.restaurant
    assert deps.orders.due[order.order_id] == due_at(order, DEADLINES)  # stored with it


def test_a_decided_order_is_due_to_tell_its_customer(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    steps.notify_restaurant(order_id, deps.ports)
    steps.reject_order(order_id, "closed", deps.ports)
    order = deps.orders.get(order_id)
    assert due_at(order, DEADLINES) == at(order, EventType.ORDER_REJECTED) + DEADLINES.telling


def test_an_accepted_and_told_order_is_due_to_be_delivered(deps: FakeDependencies) -> None:
    order = deps.orders.get(told_of_acceptance(deps))
    assert due_at(order, DEADLINES) == at(order, EventType.USER_NOTIFIED) + DEADLINES.delivery
    # Stored once the telling was done (until then the order waited for the telling first).
    assert deps.orders.due[order.order_id] == due_at(order, DEADLINES)


@pytest.mark.parametrize("ending", ["complete", "reject"])
def test_a_closed_order_with_every_telling_done_waits_for_nothing(
    deps: FakeDependencies, ending: str
) -> None:
    if ending == "complete":
        order_id = told_of_acceptance(deps)
        steps.complete_order(order_id, deps.ports)
    else:
        order_id = placed(deps)
        steps.notify_restaurant(order_id, deps.ports)
        steps.reject_order(order_id, "closed", deps.ports)
        steps.notify_user(order_id, deps.ports)
    assert due_at(deps.orders.get(order_id), DEADLINES) is None


# --- the restaurant is told of a cancellation ------------------------------------------------


def test_a_cancellation_tells_the_restaurant_that_was_sent_the_order(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    steps.notify_restaurant(order_id, deps.ports)
    steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    assert deps.notifier.sent == [
        ("restaurant", order_id, "new order"),
        ("restaurant", order_id, "cancelled"),
    ]


def test_a_cancellation_tells_no_restaurant_that_never_got_the_order(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)  # a repeat
    assert deps.notifier.sent == []


# --- the delivery deadline -------------------------------------------------------------------


def test_an_undelivered_order_is_closed_and_both_parties_are_told_once(
    deps: FakeDependencies,
) -> None:
    order_id = told_of_acceptance(deps)
    deps.at_deadline(order_id)
    expired = steps.expire_delivery(order_id, deps.ports)
    again = steps.expire_delivery(order_id, deps.ports)
    assert expired is not None and again == expired
    assert expired.data == {"customer_id": "c-1", "restaurant_id": "r-1", "deadline_seconds": 90}
    order = deps.orders.get(order_id)
    assert order.status is OrderStatus.UNDELIVERED
    assert deps.notifier.sent[-2:] == [
        ("customer", order_id, "undelivered"),
        ("restaurant", order_id, "undelivered"),
    ]
    assert due_at(order, DEADLINES) is None
    with pytest.raises(DeadlinePassedError):  # the restaurant's confirmation after the deadline
        steps.complete_order(order_id, deps.ports, answer=True)


def test_a_delivery_confirmed_in_time_is_not_expired(deps: FakeDependencies) -> None:
    order_id = told_of_acceptance(deps)
    steps.complete_order(order_id, deps.ports)
    assert steps.expire_delivery(order_id, deps.ports) is None
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED


def test_the_expire_delivery_task_returns_its_event_or_none(deps: FakeDependencies) -> None:
    order_id = told_of_acceptance(deps, Flow.ORCHESTRATION)
    deps.at_deadline(order_id)
    result = expire_delivery_task({"order_id": order_id}, None)
    assert result["event"]["type"] == "order_undelivered"
    steps.complete_order(told_of_acceptance(deps, Flow.ORCHESTRATION, "o-2"), deps.ports)
    assert expire_delivery_task({"order_id": "o-2"}, None) == {"event": None}


def test_the_delivery_wait_is_never_expired_before_its_stored_deadline(
    deps: FakeDependencies,
) -> None:
    # GIVEN the delivery wait's timer firing a moment before the stored deadline (it started
    # when the state was entered, before the customer was told: the deadline's origin)
    order_id = told_of_acceptance(deps, Flow.ORCHESTRATION)
    deps.at_deadline(order_id, early=timedelta(milliseconds=1))
    # THEN ExpireDelivery does nothing yet (its state retries it)
    with pytest.raises(DeadlineNotReachedError):
        expire_delivery_task({"order_id": order_id}, None)
    # AND a confirmation still in time stands; at the deadline the task follows it
    deps.at_deadline(order_id, early=timedelta(milliseconds=1))
    steps.complete_order(order_id, deps.ports, answer=True)
    assert expire_delivery_task({"order_id": order_id}, None) == {"event": None}
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED


# --- what the sweeper does with an order past its deadline -----------------------------------


def test_the_sweeper_gives_the_restaurant_deadline_checker_its_margin(
    deps: FakeDependencies,
) -> None:
    order = deps.orders.get(placed(deps))
    deadline = at(order, EventType.ORDER_PLACED) + DEADLINES.restaurant
    assert next_action(order, deadline, DEADLINES) is SweepAction.WAIT
    assert next_action(order, deadline + MARGIN, DEADLINES) is SweepAction.SETTLE_AT_DEADLINE


def test_an_orchestrated_order_whose_execution_ended_is_settled_at_the_deadline(
    deps: FakeDependencies,
) -> None:
    # The sweeper looks at it only once the execution ended: nobody else is left, no margin.
    order = deps.orders.get(placed(deps, Flow.ORCHESTRATION))
    deadline = at(order, EventType.ORDER_PLACED) + DEADLINES.restaurant
    assert next_action(order, deadline - timedelta(seconds=1), DEADLINES) is SweepAction.RESCHEDULE
    assert next_action(order, deadline, DEADLINES) is SweepAction.SETTLE_AT_DEADLINE


def test_a_decided_order_whose_customer_was_not_told_is_told(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    order = deps.orders.get(order_id)
    telling = at(order, EventType.ORDER_CANCELLED) + DEADLINES.telling
    assert next_action(order, telling, DEADLINES) is SweepAction.WAIT  # the user-notifier's margin
    assert next_action(order, telling + MARGIN, DEADLINES) is SweepAction.TELL_CUSTOMER


def test_the_sweeper_owns_the_choreography_delivery_deadline(deps: FakeDependencies) -> None:
    order = deps.orders.get(told_of_acceptance(deps))
    deadline = at(order, EventType.USER_NOTIFIED) + DEADLINES.delivery
    assert next_action(order, deadline - timedelta(seconds=1), DEADLINES) is SweepAction.RESCHEDULE
    assert next_action(order, deadline, DEADLINES) is SweepAction.EXPIRE_DELIVERY


def test_a_closed_order_is_no_longer_watched(deps: FakeDependencies) -> None:
    order_id = told_of_acceptance(deps)
    steps.complete_order(order_id, deps.ports)
    order = deps.orders.get(order_id)
    closed_at = at(order, EventType.ORDER_COMPLETED)
    assert next_action(order, closed_at, DEADLINES) is SweepAction.RESCHEDULE


# --- the sweeper's entry point, with fakes ---------------------------------------------------


def sweep_later(deps: FakeDependencies, later: timedelta = AFTER_EVERYTHING) -> dict[str, object]:
    """One sweep, its clock ``later`` than the steps' (the fake clock steps a second a read)."""
    base = deps.ports.clock()
    deps.ports = dataclasses.replace(deps.ports, clock=lambda: base + later)
    deps.orders.recorder = "sweeper"
    return sweeper(None)  # type: ignore[arg-type]


def test_the_sweeper_cancels_an_unanswered_order_and_tells_both_parties(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    steps.notify_restaurant(order_id, deps.ports)
    result = sweep_later(deps)
    assert result == {"swept": {order_id: "settle_at_deadline"}, "failed": {}}
    order = deps.orders.get(order_id)
    assert order.status is OrderStatus.CANCELLED
    assert order.decision == Decision(Outcome.CANCELLED, "restaurant_timeout")
    # The timeline says who ended it.
    cancelled = order.recorded(EventType.ORDER_CANCELLED)
    assert cancelled is not None and order.recorded_by[cancelled.event_id] == "sweeper"
    assert ("restaurant", order_id, "cancelled") in deps.notifier.sent
    assert ("customer", order_id, "cancelled") in deps.notifier.sent
    assert order_id not in deps.orders.due


def test_the_sweeper_carries_out_a_decision_its_execution_never_did(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN an accept recorded while the execution had ended (its retries ran out)
    order_id = awaiting_restaurant(client, deps, "orchestration")
    deps.workflow.waiting = False
    assert post(client, f"/orders/{order_id}/accept").status_code == 202
    # WHEN the sweeper runs past the deadline
    sweep_later(deps)
    # THEN the order was accepted and the customer told; it now awaits delivery
    order = deps.orders.get(order_id)
    assert order.status is OrderStatus.USER_NOTIFIED
    assert deps.notifier.sent[-1] == ("customer", order_id, "accepted")


def test_the_sweeper_leaves_a_running_execution_alone(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    deps.workflow.running.add(order_id)
    result = sweep_later(deps)
    assert result["swept"] == {order_id: "left to its running execution"}
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED


def test_the_sweeper_expires_an_undelivered_order(deps: FakeDependencies) -> None:
    order_id = told_of_acceptance(deps)
    sweep_later(deps)
    assert deps.orders.get(order_id).status is OrderStatus.UNDELIVERED


def test_one_orders_failure_does_not_stop_the_sweep(deps: FakeDependencies) -> None:
    first = told_of_acceptance(deps)
    second = placed(deps, order_id="o-2")
    real_append = deps.orders.append

    def failing_for_first(order: Order, *args: Any, **kwargs: Any) -> None:
        if order.order_id == first:
            raise DependencyUnavailableError("the orders table is throttling")
        real_append(order, *args, **kwargs)

    deps.orders.append = failing_for_first  # type: ignore[method-assign]
    result = sweep_later(deps)
    assert "DependencyUnavailableError" in str(result["failed"][first])  # type: ignore[index]
    assert deps.orders.get(second).status is OrderStatus.CANCELLED
    assert first in deps.orders.due  # still watched: the next sweep tries again


def test_a_sweep_before_any_deadline_does_nothing(deps: FakeDependencies) -> None:
    placed(deps)
    assert sweep_later(deps, timedelta(0)) == {"swept": {}, "failed": {}}


# --- decisions survive exhausted task retries ------------------------------------------------


def test_orchestrated_completion_after_the_execution_ended_completes_the_order(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    steps.accept_order(order_id, deps.ports)
    steps.notify_user(order_id, deps.ports)
    deps.workflow.waiting = False  # the execution failed or was stopped: nothing waits
    response = post(client, f"/orders/{order_id}/complete")
    assert response.status_code == 202, response.body
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED
    assert deps.workflow.resumed == []


def test_orchestrated_completion_is_still_handed_to_a_waiting_execution(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    steps.accept_order(order_id, deps.ports)
    steps.notify_user(order_id, deps.ports)
    assert post(client, f"/orders/{order_id}/complete").status_code == 202
    assert deps.workflow.resumed == [(order_id, {"decision": "delivered"})]
    # recorded before it was handed over: the answer stands whatever the workflow does next
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED


def test_a_sweep_stops_while_it_has_its_reserve_of_time_left(deps: FakeDependencies) -> None:
    """The rest wait for the next run rather than be cut off by the function's timeout."""
    first, second = placed(deps), placed(deps, order_id="o-2")
    base = deps.ports.clock()
    deps.ports = dataclasses.replace(deps.ports, clock=lambda: base + AFTER_EVERYTHING)
    remaining = iter([RESERVE_MS + 1, RESERVE_MS - 1])

    class Invocation:
        context = type(
            "Context", (), {"get_remaining_time_in_millis": lambda self: next(remaining)}
        )()

    result = sweeper(Invocation())  # type: ignore[arg-type]
    assert list(result["swept"]) == [first]
    assert deps.orders.get(second).status is OrderStatus.PLACED
