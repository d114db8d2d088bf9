"""How long an order may wait in each status before someone should look at it.

The viewer highlights orders past these: an order waiting on the restaurant past its
deadline (plus a margin for the deadline's own delivery), an accepted order whose
customer was not told within a minute of that, or a delivery not confirmed in two hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.orders.model import OrderStatus

MARGIN = timedelta(seconds=30)
TELLING_THE_CUSTOMER = timedelta(minutes=1)
DELIVERY = timedelta(hours=2)
FINAL = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.UNDELIVERED}
)


def expected_within(status: OrderStatus, restaurant_deadline: timedelta) -> timedelta | None:
    """How long after placing an order in ``status`` should have moved on; None if it is done."""
    if status in FINAL:
        return None
    if status in (OrderStatus.PLACED, OrderStatus.RESTAURANT_NOTIFIED):
        return restaurant_deadline + MARGIN
    if status is OrderStatus.ACCEPTED:
        return restaurant_deadline + MARGIN + TELLING_THE_CUSTOMER
    return restaurant_deadline + MARGIN + TELLING_THE_CUSTOMER + DELIVERY


def is_overdue(
    status: OrderStatus, placed_at: datetime, now: datetime, restaurant_deadline: timedelta
) -> bool:
    limit = expected_within(status, restaurant_deadline)
    return limit is not None and now - placed_at > limit
