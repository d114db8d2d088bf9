"""Unit tests of the notification text: what customers typed is escaped before it is sent."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.sns_notifier import SnsNotifier
from chalicelib.orders import tellings
from chalicelib.orders.model import CancelReason, Flow, LineItem, Order, OrderStatus
from chalicelib.orders.tellings import quoted


class RecordingSns:
    """Stands in for the boto3 SNS client: keeps what ``publish`` was given."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **request: Any) -> dict[str, str]:
        self.published.append(request)
        return {"MessageId": f"m-{len(self.published)}"}


HOSTILE_NAME = "Ramen\"</b>\n<script>alert('x')</script>\r\u2028& more"


def an_order(*items: LineItem) -> Order:
    return Order("o-1", "c-1", "r-1", items, Flow.CHOREOGRAPHY, OrderStatus.PLACED, "f")


def test_an_item_name_with_markup_newlines_and_quotes_is_escaped_and_quoted() -> None:
    # GIVEN an order whose item name holds markup, quotes and line breaks
    sns = RecordingSns()
    order = an_order(LineItem(HOSTILE_NAME, 2, 900), LineItem("Gyoza", 1, 500))
    # WHEN the restaurant is told about it
    SnsNotifier("arn:topic", sns).tell(tellings.new_order(order))
    # THEN the name arrives as one quoted line of inert text
    (request,) = sns.published
    text = json.loads(request["Message"])["text"]
    assert text == (
        'New order o-1: 2 x "Ramen&quot;&lt;/b&gt; &lt;script&gt;alert(&#x27;x&#x27;)'
        '&lt;/script&gt;  &amp; more" at 9.00, 1 x "Gyoza" at 5.00; total 23.00'
    )
    assert not any(char in text for char in "<>\n\r\u2028")


def test_the_restaurants_new_order_notice_lists_each_items_price_and_the_total() -> None:
    # GIVEN an order of two items, one of them free, the other 3 x 12.05
    order = an_order(LineItem("Soup", 3, 1205), LineItem("Water", 1, 0))
    # WHEN the restaurant is sent it
    told = tellings.new_order(order)
    # THEN it reads what each item costs and what the whole order comes to
    assert told.text == 'New order o-1: 3 x "Soup" at 12.05, 1 x "Water" at 0.00; total 36.15'


def test_quoting_cannot_be_escaped_from() -> None:
    # A name cannot end its own quotes, whatever it holds.
    assert quoted('"') == '"&quot;"'
    assert quoted("a\tb\x00c") == '"a b c"'


def test_the_restaurant_is_told_why_for_every_cancel_reason() -> None:
    order = an_order(LineItem("Gyoza", 1, 500))
    for reason in CancelReason:
        told = tellings.restaurant_closed(order, "cancelled", reason.value)
        assert "no reason given" not in told.text, reason
