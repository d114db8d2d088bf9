"""Choreography: independent services, each reacting to the order events it subscribed to.

No handler knows the whole flow. Which events reach which queue is declared in
``chalicelib/subscriptions.py`` (the deploy turns it into SNS filter policies); which
handler consumes which subscription's queue in ``HANDLERS`` (and how, with the other
functions, in ``chalicelib/functions.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.bootstrap import dependencies, order_facts
from chalicelib.entrypoints.invocation import LambdaEvent
from chalicelib.entrypoints.messages import react_to_each
from chalicelib.orders import steps
from chalicelib.orders.events import Event
from chalicelib.orders.model import Order
from chalicelib.promotions.vouchers import issue_voucher
from chalicelib.subscriptions import (
    PROMOTIONS,
    RESTAURANT_DEADLINE,
    RESTAURANT_NOTIFIER,
    USER_NOTIFIER,
    Subscription,
)


def restaurant_notifier(sqs_event: LambdaEvent) -> dict[str, Any]:
    def notify_restaurant(event: Event, order: Order) -> Event:
        return steps.notify_restaurant(event.order_id, dependencies().ports, read=order)

    return react_to_each(sqs_event, RESTAURANT_NOTIFIER, notify_restaurant)


def restaurant_deadline_checker(sqs_event: LambdaEvent) -> dict[str, Any]:
    """Gets order_placed only after the queue's delivery delay, i.e. at the deadline."""

    def enforce_restaurant_deadline(event: Event, order: Order) -> Event | None:
        return steps.enforce_restaurant_deadline(event.order_id, dependencies().ports, read=order)

    return react_to_each(sqs_event, RESTAURANT_DEADLINE, enforce_restaurant_deadline)


def user_notifier(sqs_event: LambdaEvent) -> dict[str, Any]:
    def notify_user(event: Event, order: Order) -> Event:
        return steps.notify_user(event.order_id, dependencies().ports, read=order)

    return react_to_each(sqs_event, USER_NOTIFIER, notify_user)


def promotions(sqs_event: LambdaEvent) -> dict[str, Any]:
    """Another bounded context: it builds on order_completed, whoever coordinated the order."""

    def issue_completion_voucher(event: Event, order: Order) -> None:
        issue_voucher(event, lambda _order_id: order_facts(order), dependencies().vouchers)

    return react_to_each(sqs_event, PROMOTIONS, issue_completion_voucher)


HANDLERS: dict[Subscription, Callable[[LambdaEvent], dict[str, Any]]] = {
    RESTAURANT_NOTIFIER: restaurant_notifier,
    RESTAURANT_DEADLINE: restaurant_deadline_checker,
    USER_NOTIFIER: user_notifier,
    PROMOTIONS: promotions,
}
