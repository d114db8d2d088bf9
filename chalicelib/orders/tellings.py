"""What a step tells people (the restaurant, the customer), decided when its event is recorded.

A telling is stored with its event, in the same write (the outbox), and the relay hands it to
the notifications topic from the table's stream: a step never tells anyone after its write,
so a crash cannot leave a telling undone, or done but not known to be done. Every copy of a
telling carries the same ``notification_id`` (``<order>/<audience>/<subject>``), which is its
deduplication id on the FIFO topic; receivers drop later repeats by the same id.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.orders.model import CancelReason, Order

CUSTOMER_MESSAGES = {
    "accepted": "Your order {order_id} was accepted and is being prepared.",
    "rejected": "Sorry, the restaurant could not take your order {order_id}.",
    "cancelled": "Your order {order_id} was cancelled.",
    "undelivered": "Sorry, your order {order_id} was not delivered in time. Please contact us.",
}
# What the restaurant learns when an order it was sent ends without it, by outcome.
RESTAURANT_MESSAGES = {
    "cancelled": "Order {order_id} was cancelled ({why}): do not prepare it.",
    "undelivered": "Order {order_id} is closed as undelivered: its delivery was not confirmed "
    "in time.",
}
# Why an order was cancelled, in the restaurant's words.
CANCELLED_BECAUSE: dict[str, str] = {
    CancelReason.CUSTOMER_REQUEST: "the customer cancelled it",
    CancelReason.RESTAURANT_TIMEOUT: "it was not answered in time",
    CancelReason.WORKFLOW_FAILED: "it could not be processed",
}


def quoted(user_text: str) -> str:
    """``user_text`` safe inside a notification: one line, HTML-escaped, in double quotes.

    Receivers may render the text as HTML or show it in a one-line push message, so markup
    is escaped (quotes too, so the text cannot close its own quotes) and every control or
    line/paragraph separator character becomes a space.
    """
    one_line = "".join(
        " " if unicodedata.category(char) in {"Cc", "Zl", "Zp"} else char for char in user_text
    )
    return f'"{html.escape(one_line, quote=True)}"'


@dataclass(frozen=True)
class Telling:
    audience: str  # "restaurant" or "customer": receivers subscribe by it
    recipient: str
    order_id: str
    subject: str  # "new_order", or how the order ended for this audience
    text: str

    @property
    def notification_id(self) -> str:
        return f"{self.order_id}/{self.audience}/{self.subject}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Telling:
        return cls(**{name: str(stored[name]) for name in cls.__dataclass_fields__})


def money(cents: int) -> str:
    """An amount in cents as the restaurant reads it: ``1900`` -> ``19.00``."""
    return f"{cents // 100}.{cents % 100:02d}"


def new_order(order: Order) -> Telling:
    """The restaurant is sent the order with each item's price and the total, so it sees what
    it accepts (item names are the customer's words: quoted)."""
    lines = ", ".join(
        f"{item.quantity} x {quoted(item.name)} at {money(item.unit_price_cents)}"
        for item in order.items
    )
    return Telling(
        "restaurant",
        order.restaurant_id,
        order.order_id,
        "new_order",
        f"New order {order.order_id}: {lines}; total {money(order.total_cents)}",
    )


def customer_told(order: Order, outcome: str) -> Telling:
    """The customer learns how the order ended for now: accepted, rejected, cancelled..."""
    text = CUSTOMER_MESSAGES[outcome].format(order_id=order.order_id)
    return Telling("customer", order.customer_id, order.order_id, outcome, text)


def restaurant_closed(order: Order, outcome: str, reason: str | None) -> Telling:
    """A restaurant that was sent the order learns it ended without it, and why."""
    why = CANCELLED_BECAUSE.get(reason or "", "no reason given")
    text = RESTAURANT_MESSAGES[outcome].format(order_id=order.order_id, why=why)
    return Telling("restaurant", order.restaurant_id, order.order_id, outcome, text)
