"""Unit tests of the business steps with in-memory ports."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib.orders import steps
from chalicelib.orders.deadlines import restaurant_due
from chalicelib.orders.errors import (
    DeadlineNotReachedError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidOrderError,
    OrderNotFoundError,
)
from chalicelib.orders.events import EventType
from chalicelib.orders.model import CancelReason, Flow, LineItem, Order, OrderStatus
from tests.unit.fakes import FakeDependencies, MovableClock, SteppingClock


def place(deps: FakeDependencies, order_id: str = "o-1", fingerprint: str = "f-1") -> None:
    steps.place_order(
        steps.PlaceOrder(
            order_id=order_id,
            customer_id="c-1",
            restaurant_id="r-1",
            items=(LineItem("Pad thai", 2, 1100),),
            flow=Flow.CHOREOGRAPHY,
            request_fingerprint=fingerprint,
        ),
        deps.ports,
    )


@pytest.fixture
def deps() -> FakeDependencies:
    return FakeDependencies()


def test_place_order_records_order_placed_with_the_total(deps: FakeDependencies) -> None:
    place(deps)
    order = deps.orders.get("o-1")
    assert order.status is OrderStatus.PLACED
    (placed,) = order.history
    assert placed.type is EventType.ORDER_PLACED
    assert placed.data["total_cents"] == 2200
    assert placed.flow == "choreography"


def test_placing_the_same_request_twice_returns_the_first_event(deps: FakeDependencies) -> None:
    place(deps)
    first = deps.orders.get("o-1").history[0]
    again = steps.place_order(
        steps.PlaceOrder(
            "o-1", "c-1", "r-1", (LineItem("Pad thai", 2, 1100),), Flow.CHOREOGRAPHY, "f-1"
        ),
        deps.ports,
    )
    assert again == first
    assert len(deps.orders.get("o-1").history) == 1


def test_the_same_id_with_another_request_is_refused(deps: FakeDependencies) -> None:
    place(deps, fingerprint="f-1")
    with pytest.raises(IdempotencyKeyReusedError):
        place(deps, fingerprint="f-2")


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ((), "items"),
        ((LineItem("x", 0, 1),), "items[0].quantity"),
        ((LineItem("x", 1, -1),), "items[0].unit_price_cents"),
    ],
)
def test_an_invalid_order_names_the_field(items: tuple[LineItem, ...], field: str) -> None:
    with pytest.raises(InvalidOrderError) as refused:
        steps.PlaceOrder("o-1", "c-1", "r-1", items, Flow.CHOREOGRAPHY, "f")
    assert refused.value.field == field


def test_notify_restaurant_tells_the_restaurant_and_records_it(deps: FakeDependencies) -> None:
    place(deps)
    event = steps.notify_restaurant("o-1", deps.ports)
    assert event.type is EventType.RESTAURANT_NOTIFIED
    assert deps.notifier.sent == [("restaurant", "o-1", "new order")]
    assert deps.orders.get("o-1").status is OrderStatus.RESTAURANT_NOTIFIED


def test_a_step_run_twice_has_one_effect_and_returns_the_same_event(deps: FakeDependencies) -> None:
    place(deps)
    first = steps.notify_restaurant("o-1", deps.ports)
    second = steps.notify_restaurant("o-1", deps.ports)
    assert second == first
    assert len(deps.notifier.sent) == 1
    assert [e.type for e in deps.orders.get("o-1").history].count(
        EventType.RESTAURANT_NOTIFIED
    ) == 1


def test_full_happy_path_through_the_steps(deps: FakeDependencies) -> None:
    place(deps)
    steps.notify_restaurant("o-1", deps.ports)
    steps.accept_order("o-1", deps.ports)
    told = steps.notify_user("o-1", deps.ports)
    completed = steps.complete_order("o-1", deps.ports)
    assert told.data == {"customer_id": "c-1", "outcome": "accepted"}
    assert completed.data == {"customer_id": "c-1", "restaurant_id": "r-1", "total_cents": 2200}
    order = deps.orders.get("o-1")
    assert order.status is OrderStatus.COMPLETED
    assert [e.type.value for e in order.history] == [
        "order_placed",
        "restaurant_notified",
        "order_accepted",
        "user_notified",
        "order_completed",
    ]


def test_rejection_is_told_to_the_user_and_stays_rejected(deps: FakeDependencies) -> None:
    place(deps)
    steps.notify_restaurant("o-1", deps.ports)
    rejected = steps.reject_order("o-1", "kitchen closed", deps.ports)
    told = steps.notify_user("o-1", deps.ports)
    assert rejected.data["reason"] == "kitchen closed"
    assert told.data["outcome"] == "rejected"
    assert deps.orders.get("o-1").status is OrderStatus.REJECTED
    assert deps.notifier.sent[-1] == ("customer", "o-1", "rejected")


def test_accept_after_cancel_is_refused_and_changes_nothing(deps: FakeDependencies) -> None:
    place(deps)
    steps.notify_restaurant("o-1", deps.ports)
    steps.cancel_order("o-1", CancelReason.CUSTOMER_REQUEST, deps.ports)
    before = deps.orders.get("o-1")
    with pytest.raises(IllegalTransitionError):
        steps.accept_order("o-1", deps.ports)
    assert deps.orders.get("o-1") == before


def test_notify_user_before_the_restaurant_answered_is_refused_without_telling(
    deps: FakeDependencies,
) -> None:
    place(deps)
    with pytest.raises(IllegalTransitionError):
        steps.notify_user("o-1", deps.ports)
    assert deps.notifier.sent == []


@pytest.mark.parametrize(
    "answered", [steps.accept_order, lambda o, p: steps.reject_order(o, "no", p)]
)
def test_deadline_does_nothing_when_the_restaurant_answered(
    deps: FakeDependencies, answered
) -> None:  # type: ignore[no-untyped-def]
    place(deps)
    steps.notify_restaurant("o-1", deps.ports)
    answered("o-1", deps.ports)
    assert steps.enforce_restaurant_deadline("o-1", deps.ports) is None
    assert deps.orders.get("o-1").status in {OrderStatus.ACCEPTED, OrderStatus.REJECTED}


@pytest.mark.parametrize("notified", [False, True])
def test_deadline_cancels_an_unanswered_order(deps: FakeDependencies, notified: bool) -> None:
    place(deps)
    if notified:
        steps.notify_restaurant("o-1", deps.ports)
    assert isinstance(deps.ports.clock, SteppingClock)
    deps.ports.clock.advance(deps.ports.deadlines.restaurant)
    cancelled = steps.enforce_restaurant_deadline("o-1", deps.ports)
    assert cancelled is not None
    assert cancelled.data == {"reason": "restaurant_timeout"}
    assert deps.orders.get("o-1").status is OrderStatus.CANCELLED


def test_the_restaurant_deadline_is_enforced_from_the_stored_deadline_not_before(
    deps: FakeDependencies,
) -> None:
    # GIVEN an order the restaurant was sent and has not answered, and a clock a test moves
    place(deps)
    steps.notify_restaurant("o-1", deps.ports)
    due = restaurant_due(deps.orders.get("o-1"), deps.ports.deadlines)
    clock = MovableClock(due - timedelta(milliseconds=1))
    deps.ports = replace(deps.ports, clock=clock)
    # WHEN the deadline's message comes a millisecond before the stored deadline
    with pytest.raises(DeadlineNotReachedError) as early:
        steps.enforce_restaurant_deadline("o-1", deps.ports)
    # THEN the order is not cancelled, and the error says when to come back
    assert early.value.due == due
    assert deps.orders.get("o-1").status is OrderStatus.RESTAURANT_NOTIFIED
    # AND at the deadline itself it is
    clock.now = due
    cancelled = steps.enforce_restaurant_deadline("o-1", deps.ports)
    assert cancelled is not None
    assert deps.orders.get("o-1").status is OrderStatus.CANCELLED


def test_a_concurrent_writer_makes_the_step_fail_not_overwrite(deps: FakeDependencies) -> None:
    """The loser reads again and fails with the rule the winner's write broke."""
    place(deps)
    real_get = deps.orders.get

    def get_then_lose_the_race(order_id: str) -> Order:
        order = real_get(order_id)
        deps.orders.get = real_get  # type: ignore[method-assign]
        steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
        return order

    deps.orders.get = get_then_lose_the_race  # type: ignore[method-assign]
    with pytest.raises(IllegalTransitionError):
        steps.notify_restaurant("o-1", deps.ports)
    assert deps.notifier.sent == []  # nobody is told about what was not recorded
    order = deps.orders.get("o-1")
    assert order.status is OrderStatus.CANCELLED
    assert [e.type for e in order.history] == [EventType.ORDER_PLACED, EventType.ORDER_CANCELLED]


def test_unknown_order_is_reported(deps: FakeDependencies) -> None:
    with pytest.raises(OrderNotFoundError):
        steps.accept_order("nope", deps.ports)
