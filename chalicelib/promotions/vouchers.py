"""Issue a thank-you voucher when an order is completed, whichever flow ran it.

The event only says which order to look at: who gets the voucher and how much it is
worth come from the stored order (through a read port), never from the event's data, so
a forged or altered ``order_completed`` cannot mint money.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.orders.events import Event, EventType

# A voucher is a share of what was paid, rounded down, with no floor: it never exceeds the
# paid total (a free order earns nothing), so no order can be worth more in vouchers than in pay.
VOUCHER_PERCENT = 10
# The most one voucher is worth ($20), however large the order: a voucher is a thank-you,
# and the cap bounds what any single order (or a mistake in its total) can cost.
MAXIMUM_VOUCHER_CENTS = 2_000
COMPLETED = "COMPLETED"


class OrderNotCompletedError(Exception):
    """The stored order is not completed by the ``order_completed`` event given: no voucher.

    Retrying cannot change a completed order's record, so the message is dead-lettered.
    """


@dataclass(frozen=True)
class OrderFacts:
    """What promotions reads about an order from the orders context's store."""

    customer_id: str
    status: str
    total_cents: int
    # The order_completed event the order recorded, if it has one.
    completion: Event | None


# The read port: the stored facts of the order with this id (OrderNotFoundError if none).
OrderFactsLookup = Callable[[str], OrderFacts]


def voucher_amount_cents(total_cents: int) -> int:
    """VOUCHER_PERCENT of the paid total, rounded down, at most MAXIMUM_VOUCHER_CENTS (0 for an
    order under 10 cents: no voucher is due)."""
    return min(MAXIMUM_VOUCHER_CENTS, total_cents * VOUCHER_PERCENT // 100)


@dataclass(frozen=True)
class Voucher:
    voucher_id: str
    customer_id: str
    order_id: str
    amount_cents: int
    issued_at: str


class VoucherRepository(ABC):
    @abstractmethod
    def add_once(self, voucher: Voucher) -> bool:
        """Store the voucher unless one with its id exists; True if this call stored it."""


def issue_voucher(
    completed: Event, orders: OrderFactsLookup, vouchers: VoucherRepository
) -> Voucher | None:
    """One voucher per completed order, worth ``voucher_amount_cents`` of its stored total.

    Only for an order stored as COMPLETED whose recorded order_completed is this event;
    otherwise OrderNotCompletedError. None when no voucher is due (its share of the total is
    0 cents: a voucher worth nothing is not issued) or it was issued already (a redelivery).
    """
    if completed.type is not EventType.ORDER_COMPLETED:
        raise ValueError(f"vouchers are issued for order_completed, not {completed.type}")
    order = orders(completed.order_id)
    if (
        order.status != COMPLETED
        or order.completion is None
        or order.completion.event_id != completed.event_id
    ):
        raise OrderNotCompletedError(
            f"order {completed.order_id} is {order.status}, not completed by {completed.event_id}"
        )
    amount_cents = voucher_amount_cents(order.total_cents)
    if amount_cents == 0:
        return None
    voucher = Voucher(
        voucher_id=f"order-{completed.order_id}",
        customer_id=order.customer_id,
        order_id=completed.order_id,
        amount_cents=amount_cents,
        issued_at=order.completion.occurred_at,
    )
    return voucher if vouchers.add_once(voucher) else None
