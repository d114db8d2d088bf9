"""The DynamoDB adapter's decision conditions and outbox items, on the local cloud's DynamoDB.

The fakes enforce the same conditions (tests/unit/fakes.py); these prove DynamoDB does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from boto3.dynamodb.types import TypeDeserializer

from chalicelib.adapters.dynamodb_orders import TELLINGS, DynamoDbOrderRepository, event_sk
from chalicelib.entrypoints.relay import recorded_event
from chalicelib.orders import tellings
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import ConcurrentUpdateError
from chalicelib.orders.events import EventType
from chalicelib.orders.model import OrderStatus
from tests.integration.test_adapters import (  # noqa: F401
    DEADLINES,
    RECORDER,
    an_event,
    new_order,
    orders,
)

pytestmark = pytest.mark.localcloud


def notified(orders: DynamoDbOrderRepository) -> None:  # noqa: F811
    order = new_order()
    orders.add(order)
    told = an_event("o-1", EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"})
    order.apply(told)
    orders.append(order, told, OrderStatus.PLACED)


def restaurant_due(orders: DynamoDbOrderRepository) -> datetime:  # noqa: F811
    return datetime.fromisoformat(orders.get("o-1").placed_at) + DEADLINES.restaurant


def test_a_decision_is_recorded_once(orders: DynamoDbOrderRepository) -> None:  # noqa: F811
    notified(orders)
    in_time = restaurant_due(orders) - timedelta(seconds=1)
    first, second = orders.get("o-1"), orders.get("o-1")
    first.decide(Decision(Outcome.REJECTED, "closed"))
    second.decide(Decision(Outcome.ACCEPTED))
    orders.record_decision(first, in_time)
    with pytest.raises(ConcurrentUpdateError):
        orders.record_decision(second, in_time)
    stored = orders.get("o-1")
    assert stored.decision == Decision(Outcome.REJECTED, "closed")
    assert stored.status is OrderStatus.RESTAURANT_NOTIFIED


def test_a_decision_event_needs_no_decision_or_the_same(
    orders: DynamoDbOrderRepository,  # noqa: F811
) -> None:
    notified(orders)
    decided, undecided = orders.get("o-1"), orders.get("o-1")
    decided.decide(Decision(Outcome.ACCEPTED))
    orders.record_decision(decided, restaurant_due(orders) - timedelta(seconds=1))

    cancelled = an_event("o-1", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    undecided.apply(cancelled)  # read before the decision: looks allowed
    with pytest.raises(ConcurrentUpdateError):
        orders.append(undecided, cancelled, OrderStatus.RESTAURANT_NOTIFIED)

    accepted = an_event("o-1", EventType.ORDER_ACCEPTED, {"restaurant_id": "r-1"})
    current = orders.get("o-1")
    current.apply(accepted)
    orders.append(current, accepted, OrderStatus.RESTAURANT_NOTIFIED)
    stored = orders.get("o-1")
    assert (stored.status, stored.decision) == (OrderStatus.ACCEPTED, Decision(Outcome.ACCEPTED))


def test_a_decision_at_the_stored_deadline_is_refused_by_the_write(
    orders: DynamoDbOrderRepository,  # noqa: F811
) -> None:
    # GIVEN an order awaiting its restaurant, read while it still looked undecided
    notified(orders)
    due = restaurant_due(orders)
    late = orders.get("o-1")
    late.decide(Decision(Outcome.ACCEPTED))
    # WHEN its decision is written at the stored deadline (whatever the API checked before)
    # THEN DynamoDB's condition on the stored due_at refuses it, and nothing is decided
    with pytest.raises(ConcurrentUpdateError):
        orders.record_decision(late, due)
    assert orders.get("o-1").decision is None
    # AND a millisecond before the deadline it lands
    orders.record_decision(late, due - timedelta(milliseconds=1))
    assert orders.get("o-1").decision == Decision(Outcome.ACCEPTED)


def test_an_events_tellings_are_stored_in_its_item_as_the_relay_reads_them(
    orders: DynamoDbOrderRepository,  # noqa: F811
) -> None:
    notified(orders)
    order = orders.get("o-1")
    cancelled = an_event("o-1", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    order.apply(cancelled)
    told = tellings.restaurant_closed(order, "cancelled", "customer_request")
    orders.append(order, cancelled, OrderStatus.RESTAURANT_NOTIFIED, tellings=[told])
    # The event item as the table's stream carries it (Powertools hands the relay plain values)
    item = orders._client.get_item(  # the raw item is what is under test
        TableName=orders._table,
        Key={"pk": {"S": "o-1"}, "sk": {"S": event_sk(order.version)}},
    )["Item"]
    image = {name: TypeDeserializer().deserialize(value) for name, value in item.items()}
    recorded = recorded_event(image)
    assert recorded is not None
    assert recorded.event == cancelled
    assert recorded.tellings == (told,)
    # An event that tells nobody stores no tellings
    first = {"pk": {"S": "o-1"}, "sk": {"S": event_sk(2)}}
    notified_item = orders._client.get_item(TableName=orders._table, Key=first)["Item"]
    assert TELLINGS not in notified_item
