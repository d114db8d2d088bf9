"""Who may do what to an order: the rules every entry point applies, whatever the flow.

- A customer places orders only as themselves, and reads, follows and cancels only
  their own orders.
- A restaurant reads and answers (accept, reject, complete) only orders addressed to it.

Someone who is not a party to an order is told it does not exist (404), so that
probing ids reveals nothing. A party asking for what their role may not do (a
customer accepting their own order) is refused (403): they know the order exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.orders.errors import ForbiddenError, OrderNotFoundError
from chalicelib.orders.model import Order


class Role(StrEnum):
    CUSTOMER = "customer"
    RESTAURANT = "restaurant"


class Action(StrEnum):
    READ = "read"
    ACCEPT = "accept"
    REJECT = "reject"
    COMPLETE = "complete"
    CANCEL = "cancel"


# What each party to an order may do to it.
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.CUSTOMER: frozenset({Action.READ, Action.CANCEL}),
    Role.RESTAURANT: frozenset({Action.READ, Action.ACCEPT, Action.REJECT, Action.COMPLETE}),
}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a customer or a restaurant, by the id orders name them with."""

    role: Role
    id: str

    def __str__(self) -> str:
        return f"{self.role.value} {self.id}"


def check_may_place(principal: Principal, customer_id: str) -> None:
    """Only a customer places an order, and only for themselves."""
    if principal.role is not Role.CUSTOMER:
        raise ForbiddenError(f"a {principal.role.value} cannot place orders")
    if principal.id != customer_id:
        raise ForbiddenError(f"{principal} cannot place an order for customer {customer_id}")


def check_may(principal: Principal, action: Action, order: Order) -> None:
    """Raise unless ``principal`` may ``action`` the order (404 to strangers, 403 to parties)."""
    if not is_party(principal, order):
        raise OrderNotFoundError(order.order_id)
    if action not in ALLOWED[principal.role]:
        raise ForbiddenError(f"a {principal.role.value} cannot {action.value} an order")


def is_party(principal: Principal, order: Order) -> bool:
    party = order.customer_id if principal.role is Role.CUSTOMER else order.restaurant_id
    return principal.id == party
