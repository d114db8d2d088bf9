"""Sends notifications for people (restaurant app, customer inbox) to a notifications topic.

A push service or an e-mail sender subscribes to the topic (through an SQS FIFO queue),
filtering on the ``audience`` attribute; this system only hands the message over. A step
retried after a crash between telling and marking it told tells again, so every message
carries a ``notification_id`` that is the same for every copy, and it is the message's
deduplication id on the deployments' FIFO topic: SNS drops a copy published within five
minutes of the first. Receivers drop later repeats by the same id.
"""

from __future__ import annotations

import html
import json
import unicodedata
from typing import Any

from chalicelib.orders.model import Order
from chalicelib.ports import Notifier

MESSAGES = {
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
# Why an order was cancelled, in the restaurant's words (the cancel reasons).
CANCELLED_BECAUSE = {
    "customer_request": "the customer cancelled it",
    "restaurant_timeout": "it was not answered in time",
    "workflow_failed": "it could not be processed",
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


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str, client: Any) -> None:
        self._topic_arn = topic_arn
        self._client = client

    def tell_restaurant(self, order: Order) -> None:
        self._send(
            audience="restaurant",
            recipient=order.restaurant_id,
            order=order,
            about="new_order",
            text=f"New order {order.order_id}: "
            # Item names are the customer's words: never sent unescaped.
            + ", ".join(f"{item.quantity} x {quoted(item.name)}" for item in order.items),
        )

    def tell_customer(self, order: Order, outcome: str) -> None:
        self._send(
            audience="customer",
            recipient=order.customer_id,
            order=order,
            about=outcome,
            text=MESSAGES[outcome].format(order_id=order.order_id),
        )

    def tell_restaurant_closed(self, order: Order, outcome: str, reason: str | None) -> None:
        why = CANCELLED_BECAUSE.get(reason or "", "no reason given")
        self._send(
            audience="restaurant",
            recipient=order.restaurant_id,
            order=order,
            about=outcome,
            text=RESTAURANT_MESSAGES[outcome].format(order_id=order.order_id, why=why),
        )

    def _send(self, audience: str, recipient: str, order: Order, about: str, text: str) -> None:
        message = {
            "notification_id": f"{order.order_id}/{audience}/{about}",
            "recipient": recipient,
            "order_id": order.order_id,
            "text": text,
        }
        once: dict[str, str] = {}
        if self._topic_arn.endswith(".fifo"):
            # One group per order: an order's notifications arrive in order, orders in parallel.
            once = {
                "MessageGroupId": order.order_id,
                "MessageDeduplicationId": message["notification_id"],
            }
        self._client.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(message),
            MessageAttributes={"audience": {"DataType": "String", "StringValue": audience}},
            **once,
        )
