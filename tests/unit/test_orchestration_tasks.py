"""Unit tests of the state machine's Lambda tasks, invoked through chalice.test.Client."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from chalicelib.orders import steps
from chalicelib.orders.errors import IllegalTransitionError
from chalicelib.orders.model import CancelReason, Flow, LineItem, OrderStatus
from tests.unit.fakes import FakeDependencies


def placed(deps: FakeDependencies, order_id: str = "o-1") -> str:
    steps.place_order(
        steps.PlaceOrder(
            order_id, "c-1", "r-1", (LineItem("Curry", 1, 1300),), Flow.ORCHESTRATION, "f"
        ),
        deps.ports,
    )
    deps.events.published.clear()  # the tests look at what the task under test causes
    return order_id


def test_notify_restaurant_task_saves_the_token_returns_and_publishes_the_event(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(deps)
    result = client.lambda_.invoke(
        "notify_restaurant_task", {"order_id": order_id, "task_token": "t-1"}
    ).payload
    assert result["type"] == "restaurant_notified"
    assert result["flow"] == "orchestration"
    assert deps.events.types() == ["restaurant_notified"]
    assert deps.orders.get(order_id).callback_token == "t-1"


def test_the_happy_path_tasks_run_the_same_steps(client: Client, deps: FakeDependencies) -> None:
    order_id = placed(deps)
    client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t-1"})
    client.lambda_.invoke("accept_order_task", {"order_id": order_id})
    told = client.lambda_.invoke(
        "notify_user_task", {"order_id": order_id, "task_token": "t-2"}
    ).payload
    client.lambda_.invoke("complete_order_task", {"order_id": order_id})
    assert told["data"]["outcome"] == "accepted"
    assert deps.orders.get(order_id).callback_token == "t-2"
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED
    assert deps.events.types() == [
        "restaurant_notified",
        "order_accepted",
        "user_notified",
        "order_completed",
    ]


def test_reject_task_records_the_reason(client: Client, deps: FakeDependencies) -> None:
    order_id = placed(deps)
    steps.notify_restaurant(order_id, deps.ports)
    result = client.lambda_.invoke(
        "reject_order_task", {"order_id": order_id, "reason": "closed"}
    ).payload
    assert result["data"]["reason"] == "closed"


def test_a_task_on_a_cancelled_order_raises_the_error_the_asl_catches(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(deps)
    steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    with pytest.raises(IllegalTransitionError):
        client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t-1"})
    assert deps.events.types() == ["order_cancelled"]


def test_cancel_task_compensates_with_the_given_reason(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(deps)
    deps.at_deadline(order_id)
    result = client.lambda_.invoke(
        "cancel_order_task", {"order_id": order_id, "reason": "restaurant_timeout"}
    ).payload
    assert result["decision"] == "cancelled"
    assert result["reason"] == "restaurant_timeout"
    assert result["event"]["data"] == {"reason": "restaurant_timeout"}
    assert deps.orders.get(order_id).status is OrderStatus.CANCELLED
    assert deps.events.types() == ["order_cancelled"]


@pytest.mark.parametrize(
    ("function", "payload"),
    [
        ("accept_order_task", {}),
        ("notify_restaurant_task", {"order_id": "o-1"}),
        ("cancel_order_task", {"order_id": "o-1", "reason": "boredom"}),
        ("reject_order_task", {"order_id": "o-1", "reason": 5}),
    ],
)
def test_bad_task_input_is_a_named_error(
    client: Client, deps: FakeDependencies, function: str, payload: dict[str, object]
) -> None:
    from chalicelib.entrypoints.orchestration import InvalidTaskInputError

    placed(deps)
    with pytest.raises(InvalidTaskInputError):
        client.lambda_.invoke(function, payload)


def test_a_dependency_failure_leaves_as_the_one_name_the_asl_retries(
    client: Client, deps: FakeDependencies
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from chalicelib.orders.errors import DependencyUnavailableError

    order_id = placed(deps)
    steps.notify_restaurant(order_id, deps.ports)
    deps.events.published.clear()
    store = deps.orders.append

    def write_then_lose_the_answer(*args: Any, **kwargs: Any) -> None:
        store(*args, **kwargs)  # stored, then the connection drops before the answer
        raise EndpointConnectionError(endpoint_url="https://dynamodb")

    deps.orders.append = write_then_lose_the_answer  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailableError):
        client.lambda_.invoke("accept_order_task", {"order_id": order_id})
    # The retry finds the acceptance recorded and returns the same event, relayed once.
    deps.orders.append = store  # type: ignore[method-assign]
    retried = client.lambda_.invoke("accept_order_task", {"order_id": order_id}).payload
    assert retried["event_id"] == deps.orders.get(order_id).history[-1].event_id
    assert deps.events.types() == ["order_accepted"]


def calls_to_orders(deps: FakeDependencies) -> list[str]:
    """From now on, the name of each read or write of the orders repository (in order)."""
    calls: list[str] = []
    for name in ("get", "append", "save_callback_token"):
        method = getattr(deps.orders, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            calls.append(_name)
            return _method(*args, **kwargs)

        setattr(deps.orders, name, counted)
    return calls


def waiting_on(client: Client, deps: FakeDependencies, task: str) -> str:
    """An order whose next task is ``task`` (a task that waits on its token)."""
    order_id = placed(deps)
    if task == "notify_user_task":
        client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t-0"})
        client.lambda_.invoke("accept_order_task", {"order_id": order_id})
    return order_id


@pytest.mark.parametrize("task", ["notify_restaurant_task", "notify_user_task"])
def test_a_waiting_task_saves_its_token_in_the_steps_own_write(
    client: Client, deps: FakeDependencies, task: str
) -> None:
    # GIVEN an order the waiting task is next for
    order_id = waiting_on(client, deps, task)
    calls = calls_to_orders(deps)
    # WHEN the task runs with its token
    client.lambda_.invoke(task, {"order_id": order_id, "task_token": "t-1"})
    # THEN one read and one write: the token is stored with the event (the order's update in the
    # step's transaction), so nobody sees the order told without the token to answer it with
    assert calls == ["get", "append"]
    assert deps.orders.get(order_id).callback_token == "t-1"


@pytest.mark.parametrize("task", ["notify_restaurant_task", "notify_user_task"])
def test_a_retried_waiting_task_saves_its_newer_token(
    client: Client, deps: FakeDependencies, task: str
) -> None:
    # GIVEN the task ran (its event recorded with token t-1)
    order_id = waiting_on(client, deps, task)
    first = client.lambda_.invoke(task, {"order_id": order_id, "task_token": "t-1"}).payload
    calls = calls_to_orders(deps)
    # WHEN Step Functions retries it, with a new token
    again = client.lambda_.invoke(task, {"order_id": order_id, "task_token": "t-2"}).payload
    # THEN it returns the event recorded the first time, and the workflow's newer token is saved
    assert calls == ["get", "save_callback_token"]
    assert again == first
    assert deps.orders.get(order_id).callback_token == "t-2"
    # AND a copy with the token already stored writes nothing
    del calls[:]
    client.lambda_.invoke(task, {"order_id": order_id, "task_token": "t-2"})
    assert calls == ["get"]
