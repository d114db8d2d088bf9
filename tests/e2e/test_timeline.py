"""End to end: an order's timeline through the deployed API, in both flows.

Choreographed orders show the consumer that handled each event; orchestrated ones
also show the state machine's transitions, read from the execution's history.
"""

from __future__ import annotations

import pytest

from localdev.orders_api import HAPPY_PATH, OrdersApi
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e


def timeline(api: OrdersApi, order_id: str) -> dict[str, object]:
    customer, _ = api.parties[order_id]
    answer = api.request("GET", f"/orders/{order_id}/timeline", as_party=customer)
    assert answer.status == 200, answer
    return dict(answer.body)


def test_a_choreographed_timeline_names_the_consumer_of_each_event(api: OrdersApi) -> None:
    order_id = api.complete(an_order("choreography"))["order_id"]
    steps = timeline(api, order_id)["steps"]
    assert isinstance(steps, list)
    assert [(s["step"], s["service"]) for s in steps] == [
        ("order_placed", "orders API"),
        ("restaurant_notified", "restaurant_notifier"),
        ("order_accepted", "orders API"),
        ("user_notified", "user_notifier"),
        ("order_completed", "orders API"),
    ]
    since_placed = [s["since_placed_ms"] for s in steps]
    assert since_placed == sorted(since_placed) and since_placed[0] == 0
    assert all(s["since_previous_ms"] >= 0 for s in steps)


def test_an_orchestrated_timeline_shows_the_state_machines_transitions(api: OrdersApi) -> None:
    order_id = api.complete(an_order("orchestration"))["order_id"]
    steps = timeline(api, order_id)["steps"]
    assert isinstance(steps, list)
    events = [(s["step"], s["service"]) for s in steps if s["kind"] == "event"]
    assert [step for step, _ in events] == HAPPY_PATH
    assert events[1] == ("restaurant_notified", "notify_restaurant_task")
    assert events[3] == ("user_notified", "notify_user_task")
    states = [s["step"] for s in steps if s["kind"] == "state"]
    assert states[0] == "execution started"
    assert states[-1] == "execution succeeded"
    for state in ("NotifyRestaurant", "AcceptOrder", "NotifyUserAndAwaitDelivery", "CompleteOrder"):
        assert states.index(f"{state} entered") < states.index(f"{state} exited"), state
    # The restaurant's answer is recorded by a task the state machine runs after the wait.
    order = [s["step"] for s in steps]
    assert order.index("AcceptOrder entered") < order.index("order_accepted")
    assert {s["service"] for s in steps if s["kind"] == "state"} == {"order-flow state machine"}


def test_another_customer_cannot_read_the_timeline(api: OrdersApi) -> None:
    order_id = api.place(an_order("choreography"))
    intruder = ("customer", "customer-intruder")
    answer = api.request("GET", f"/orders/{order_id}/timeline", as_party=intruder)
    assert answer.status == 404
