"""End to end: ``chalice local`` serves the orders API against the local cloud, over real HTTP.

The routes run in the test machine's process; the orders they place are carried
on by the functions deployed in the local cloud, in both flows.
"""

from __future__ import annotations

import pytest

from localdev.orders_api import OrdersApi
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e


def test_chalice_local_drives_both_flows(local_api: OrdersApi, flow: str) -> None:
    order_id = local_api.place(an_order(flow))
    local_api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert local_api.act(order_id, "accept").status == 202
    order = local_api.wait_for(order_id, "USER_NOTIFIED")
    assert order["flow"] == flow


def test_chalice_local_answers_bad_input_with_400(local_api: OrdersApi) -> None:
    customer = ("customer", "customer-42")
    answer = local_api.request("POST", "/orders", {"flow": "orchestration"}, as_party=customer)
    assert answer.status == 400
    assert answer.body["code"] == "invalid_request"


def test_deployed_api_and_chalice_local_see_the_same_orders(
    local_api: OrdersApi, api: OrdersApi
) -> None:
    order_id = local_api.place(an_order("choreography"))
    api.parties[order_id] = local_api.parties[order_id]  # the same people use both
    assert api.order(order_id)["order_id"] == order_id
