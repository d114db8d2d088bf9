"""Unit tests of the order life cycle rules."""

import pytest

from chalicelib.orders.errors import IllegalTransitionError
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import FINAL, TRANSITIONS, Flow, LineItem, Order, OrderStatus


def an_order(status: OrderStatus = OrderStatus.PLACED) -> Order:
    return Order(
        order_id="o-1",
        customer_id="c-1",
        restaurant_id="r-1",
        items=(LineItem("Soup", 2, 450), LineItem("Bread", 1, 200)),
        flow=Flow.CHOREOGRAPHY,
        status=status,
        request_fingerprint="f",
    )


def an_event(event_type: EventType) -> Event:
    return Event("e", event_type, "o-1", "choreography", "2026-01-01T00:00:00+00:00")


HAPPY_PATH = [
    (EventType.RESTAURANT_NOTIFIED, OrderStatus.RESTAURANT_NOTIFIED),
    (EventType.ORDER_ACCEPTED, OrderStatus.ACCEPTED),
    (EventType.USER_NOTIFIED, OrderStatus.USER_NOTIFIED),
    (EventType.ORDER_COMPLETED, OrderStatus.COMPLETED),
]


def test_happy_path_moves_through_every_status_in_order() -> None:
    order = an_order()
    for event_type, expected in HAPPY_PATH:
        order.apply(an_event(event_type))
        assert order.status is expected
    assert order.version == len(HAPPY_PATH)


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (status, event_type)
        for status in OrderStatus
        for event_type in EventType
        if event_type not in TRANSITIONS[status]
    ],
)
def test_every_move_outside_the_table_is_refused(
    status: OrderStatus, event_type: EventType
) -> None:
    order = an_order(status)
    with pytest.raises(IllegalTransitionError):
        order.apply(an_event(event_type))
    assert order.status is status
    assert order.history == []


@pytest.mark.parametrize("late", [EventType.ORDER_ACCEPTED, EventType.RESTAURANT_NOTIFIED])
def test_a_cancelled_order_never_moves_back(late: EventType) -> None:
    order = an_order()
    order.apply(an_event(EventType.ORDER_CANCELLED))
    with pytest.raises(IllegalTransitionError):
        order.apply(an_event(late))
    assert order.status is OrderStatus.CANCELLED


def test_the_final_statuses_are_those_no_event_leads_out_of() -> None:
    closed = {status for status, moves in TRANSITIONS.items() if set(moves.values()) <= {status}}
    assert closed == FINAL


def test_telling_the_user_about_a_rejection_keeps_it_rejected_and_happens_once() -> None:
    order = an_order(OrderStatus.RESTAURANT_NOTIFIED)
    order.apply(an_event(EventType.ORDER_REJECTED))
    order.apply(an_event(EventType.USER_NOTIFIED))
    assert order.status is OrderStatus.REJECTED
    with pytest.raises(IllegalTransitionError):
        order.apply(an_event(EventType.USER_NOTIFIED))


def test_total_is_quantity_times_price_summed() -> None:
    assert an_order().total_cents == 2 * 450 + 200
