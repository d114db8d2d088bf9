"""The decision and side-effect conditions of the DynamoDB adapter, on the local cloud's DynamoDB.

The fakes enforce the same conditions (tests/unit/fakes.py); these prove DynamoDB does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamodb_orders import DynamoDbOrderRepository
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import ConcurrentUpdateError
from chalicelib.orders.events import EventType
from chalicelib.orders.model import OrderStatus
from tests.integration.test_adapters import (  # noqa: F401
    RECORDER,
    an_event,
    new_order,
    orders,
)

pytestmark = pytest.mark.localcloud
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def notified(orders: DynamoDbOrderRepository) -> None:  # noqa: F811
    order = new_order()
    orders.add(order)
    told = an_event("o-1", EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"})
    order.apply(told)
    orders.append(order, told, OrderStatus.PLACED, effect_claimed_at=NOW)


def test_a_decision_is_recorded_once(orders: DynamoDbOrderRepository) -> None:  # noqa: F811
    notified(orders)
    first, second = orders.get("o-1"), orders.get("o-1")
    first.decide(Decision(Outcome.REJECTED, "closed"))
    second.decide(Decision(Outcome.ACCEPTED))
    orders.record_decision(first)
    with pytest.raises(ConcurrentUpdateError):
        orders.record_decision(second)
    stored = orders.get("o-1")
    assert stored.decision == Decision(Outcome.REJECTED, "closed")
    assert stored.status is OrderStatus.RESTAURANT_NOTIFIED


def test_a_decision_event_needs_no_decision_or_the_same(
    orders: DynamoDbOrderRepository,  # noqa: F811
) -> None:
    notified(orders)
    decided, undecided = orders.get("o-1"), orders.get("o-1")
    decided.decide(Decision(Outcome.ACCEPTED))
    orders.record_decision(decided)

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


def test_a_due_side_effect_is_claimed_by_one_at_a_time_and_settled(
    orders: DynamoDbOrderRepository,  # noqa: F811
) -> None:
    notified(orders)
    order = orders.get("o-1")
    told = order.history[-1]
    assert order.due_effects == {told.event_id}
    # Claimed by the writer at NOW: nobody else within the lease; anyone after it.
    assert not orders.claim_effect(order, told, NOW + LEASE / 2, LEASE)
    assert orders.claim_effect(order, told, NOW + LEASE * 2, LEASE)
    orders.settle_effect(order, told, done=False)  # released: claimable at once
    assert orders.claim_effect(order, told, NOW + LEASE * 2, LEASE)
    orders.settle_effect(order, told, done=True)
    assert orders.get("o-1").due_effects == set()
    (teller, _) = orders.get("o-1").tellers[told.event_id]  # who told, for the timeline
    assert teller == RECORDER
    assert not orders.claim_effect(order, told, NOW + LEASE * 9, LEASE)
