"""How long an order may wait in each status before someone should look at it.

The viewer highlights orders past these: an order waiting on the restaurant past its
deadline (plus a margin for the deadline's own delivery), an accepted order whose
customer was not told within a minute of that, or a delivery not confirmed by the stage's
delivery deadline.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.orders.model import OrderStatus

if TYPE_CHECKING:  # deadlines.py reads TELLING_THE_CUSTOMER from here
    from chalicelib.orders.deadlines import Deadlines

MARGIN = timedelta(seconds=30)
TELLING_THE_CUSTOMER = timedelta(minutes=1)
FINAL = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.UNDELIVERED}
)


def expected_within(status: OrderStatus, deadlines: Deadlines) -> timedelta | None:
    """How long after placing an order in ``status`` should have moved on; None if it is done."""
    if status in FINAL:
        return None
    answered = deadlines.restaurant + MARGIN
    if status in (OrderStatus.PLACED, OrderStatus.RESTAURANT_NOTIFIED):
        return answered
    if status is OrderStatus.ACCEPTED:
        return answered + TELLING_THE_CUSTOMER
    return answered + TELLING_THE_CUSTOMER + deadlines.delivery


def is_overdue(
    status: OrderStatus, placed_at: datetime, now: datetime, deadlines: Deadlines
) -> bool:
    limit = expected_within(status, deadlines)
    return limit is not None and now - placed_at > limit
