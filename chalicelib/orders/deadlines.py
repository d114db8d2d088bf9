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

A person's answer has the deadline of the wait it ends (``late_answer``): accept, reject and
cancel the restaurant's, complete the delivery's. At or after it the answer is refused
(``DeadlinePassedError``, 409 ``deadline_passed``) and the deadline's owner alone ends the
wait; the answer's write holds the stored ``due_at`` in its condition, so a late answer cannot
land between the check and the write. The owner in turn acts only once the stored deadline
has passed (``owner_may_act``): a timer started before the wait's origin was recorded (the
delivery wait's, which starts before the customer is told) is retried, not obeyed early.

``expected_within`` is how long after placing an order in a status should have moved on
(the viewer highlights orders past it, the operators' tools count them as stuck): the restaurant's
deadline plus ``MARGIN`` (for the deadline's own delivery), then the telling, then the
delivery deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.orders.decision import EVENT_OUTCOMES, Decision, Outcome
from chalicelib.orders.errors import DeadlineNotReachedError, DeadlinePassedError
from chalicelib.orders.events import EventType
from chalicelib.orders.model import (
    AWAITING_RESTAURANT,
    DECIDED,
    FINAL,
    CancelReason,
    Order,
    OrderStatus,
)

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


# The decision the restaurant deadline's owner records when nobody answered in time.
DEADLINE_CANCEL = Decision(Outcome.CANCELLED, CancelReason.RESTAURANT_TIMEOUT.value)
# Where a late completion is the deadline's business: its wait, or what its owner made of it.
DELIVERY_WAIT_OR_ITS_END = frozenset({OrderStatus.USER_NOTIFIED, OrderStatus.UNDELIVERED})


def refuse_late_answer(
    order: Order, event_type: EventType, now: datetime, deadlines: Deadlines
) -> None:
    """Raise DeadlinePassedError if a person's answer (``event_type``) at ``now`` is late.

    An answer is late at or after the deadline of the wait it would end, while that wait is
    still open or was ended by its owner (the deadline's cancellation, UNDELIVERED). Not late:
    an answer in time, a repeat of one recorded in time, and an answer to an order another
    person's answer settled first (that answer is the reason it is refused: decision_taken).
    """
    if event_type in EVENT_OUTCOMES:
        open_or_ended_by_owner = order.decision in (None, DEADLINE_CANCEL)
        wait, due = "restaurant", restaurant_due(order, deadlines)
    elif event_type is EventType.ORDER_COMPLETED:
        told = order.recorded(EventType.USER_NOTIFIED)
        if told is None:
            return  # no delivery wait yet: the status refuses it
        open_or_ended_by_owner = order.status in DELIVERY_WAIT_OR_ITS_END
        wait, due = "delivery", _at(told.occurred_at) + deadlines.delivery
    else:
        return
    if open_or_ended_by_owner and now >= due:
        raise DeadlinePassedError(order.order_id, event_type.value, wait, due)


def owner_may_act(order: Order, due: datetime | None, now: datetime) -> None:
    """Raise DeadlineNotReachedError if the deadline's owner came before ``due`` (stored)."""
    if due is not None and now < due:
        raise DeadlineNotReachedError(order.order_id, due)


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
