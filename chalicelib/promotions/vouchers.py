"""Issue a thank-you voucher when an order is completed, whichever flow ran it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from chalicelib.orders.events import Event, EventType

VOUCHER_PERCENT = 10
MINIMUM_VOUCHER_CENTS = 100


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


def issue_voucher(completed: Event, vouchers: VoucherRepository) -> Voucher | None:
    """One voucher per completed order; None when it was issued already (a redelivery)."""
    if completed.type is not EventType.ORDER_COMPLETED:
        raise ValueError(f"vouchers are issued for order_completed, not {completed.type}")
    total = int(completed.data["total_cents"])
    voucher = Voucher(
        voucher_id=f"order-{completed.order_id}",
        customer_id=str(completed.data["customer_id"]),
        order_id=completed.order_id,
        amount_cents=max(MINIMUM_VOUCHER_CENTS, total * VOUCHER_PERCENT // 100),
        issued_at=completed.occurred_at,
    )
    return voucher if vouchers.add_once(voucher) else None
