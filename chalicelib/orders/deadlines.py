"""Every wait of an order has a deadline, and what each wait is expected to take.

- awaiting the restaurant: its answer by the restaurant deadline after placing (owners: the
  restaurant-deadline queue in the choreography, the NotifyRestaurant state's timeout in the
  orchestration);
- decided: the customer told within ``telling`` of the decision (owners: the user-notifier,
  the NotifyUser tasks);
- accepted and told: delivery confirmed within the delivery deadline after the customer was
  told (owners: the sweeper in the choreography, NotifyUserAndAwaitDelivery's timeout in the
  orchestration).
A telling itself has no deadline here: it is stored with its event, and the relay hands it
over from the table's stream, retried until it is (``chalicelib/entrypoints/relay.py``).

``due_at`` is the earliest of these for an order; the orders table keeps it on the order
while the order waits (a sparse index the sweeper reads), and None means nothing is left.

``expected_within`` is how long after placing an order in a status should have moved on
(the viewer highlights orders past it, the operators' tools count them as stuck): the restaurant's
deadline plus ``MARGIN`` (for the deadline's own delivery), then the telling, then the
delivery deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.orders.events import EventType
from chalicelib.orders.model import AWAITING_RESTAURANT, DECIDED, FINAL, Order, OrderStatus

# How long past a deadline its owner's own retries may still be on their way: the sweeper
# waits this long before it acts for another owner, the viewer before it calls an order late.
MARGIN = timedelta(seconds=30)
TELLING_THE_CUSTOMER = timedelta(minutes=1)


@dataclass(frozen=True)
class Deadlines:
    """How long each wait may last (the stage's settings; ``telling`` is the same everywhere)."""

    restaurant: timedelta
    delivery: timedelta
    telling: timedelta = TELLING_THE_CUSTOMER


def restaurant_due(order: Order, deadlines: Deadlines) -> datetime:
    return _at(order.placed_at) + deadlines.restaurant


def telling_due(order: Order, deadlines: Deadlines) -> datetime | None:
    """When the customer must have been told of the decision; None if told (or undecided)."""
    if order.status not in DECIDED or order.recorded(EventType.USER_NOTIFIED) is not None:
        return None
    decided = order.history[-1]  # the decision event: nothing follows it until the telling
    return _at(decided.occurred_at) + deadlines.telling


def delivery_due(order: Order, deadlines: Deadlines) -> datetime | None:
    """When the restaurant must have confirmed delivery; None unless the order awaits it."""
    told = order.recorded(EventType.USER_NOTIFIED)
    if order.status is not OrderStatus.USER_NOTIFIED or told is None:
        return None
    return _at(told.occurred_at) + deadlines.delivery


def due_at(order: Order, deadlines: Deadlines) -> datetime | None:
    """The order's next deadline; None when it waits for nothing (closed, customer told)."""
    waits: list[datetime] = []
    if order.status in AWAITING_RESTAURANT:
        waits.append(restaurant_due(order, deadlines))
    for due in (telling_due(order, deadlines), delivery_due(order, deadlines)):
        if due is not None:
            waits.append(due)
    return min(waits, default=None)


def expected_within(status: OrderStatus, deadlines: Deadlines) -> timedelta | None:
    """How long after placing an order in ``status`` should have moved on; None if it is done."""
    if status in FINAL:
        return None
    answered = deadlines.restaurant + MARGIN
    if status in AWAITING_RESTAURANT:
        return answered
    if status is OrderStatus.ACCEPTED:
        return answered + deadlines.telling
    return answered + deadlines.telling + deadlines.delivery


def is_overdue(
    status: OrderStatus, placed_at: datetime, now: datetime, deadlines: Deadlines
) -> bool:
    limit = expected_within(status, deadlines)
    return limit is not None and now - placed_at > limit


def _at(iso_time: str) -> datetime:
    return datetime.fromisoformat(iso_time)
