"""End to end: past its bound of orders in flight the deployed API refuses new orders clearly
(503 ``saturated`` with Retry-After) and places nothing, and every order it accepted completes.

The bound is reached with stand-ins for orders stuck on their way to their restaurants: items
in the orders table's ``in-flight`` index, which is what the API counts
(``chalicelib/orders/admission.py``). Real orders would reach it only by outrunning the local
cloud, which no test can make certain (``make benchmark``'s load run shows it under real load).
The stand-ins stay for one request: other tests' clients place again after Retry-After
(``OrdersApi.place_answer``), so a refusal they meet in that second only delays them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_orders import IN_FLIGHT
from deploy.stages import load_stage
from localdev.orders_api import OrdersApi, retry_after
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e


def test_a_saturated_api_refuses_new_orders_with_retry_after_and_finishes_those_it_accepted(
    local_cloud: Any, chalice_deployment: dict[str, Any], api: OrdersApi
) -> None:
    # GIVEN an order accepted, on its way
    accepted = api.place(an_order("orchestration"))
    # AND as many orders in flight as the stage admits
    dynamodb = local_cloud.client("dynamodb")
    table = chalice_deployment["orders_table"]
    stand_ins = [
        {"pk": {"S": f"admission-test-{uuid.uuid4()}"}, "sk": {"S": "IN_FLIGHT_STAND_IN"}}
        for _ in range(load_stage("local").admission.orders_in_flight)
    ]
    placed_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    for key in stand_ins:
        item = key | {"in_flight": {"S": IN_FLIGHT}, "placed_at": {"S": placed_at}}
        dynamodb.put_item(TableName=table, Item=item)
    order = an_order("choreography")
    customer = ("customer", order["customer_id"])
    try:
        # WHEN a customer places an order
        refused = api.request("POST", "/orders", order, as_party=customer)
    finally:
        for key in stand_ins:
            dynamodb.delete_item(TableName=table, Key=key)
    # THEN it is refused clearly: 503 saturated, when to try again, and a message
    assert refused.status == 503, refused
    assert refused.body["code"] == "saturated" and refused.body["message"], refused
    assert retry_after(refused) == load_stage("local").admission.retry_after_seconds
    # AND nothing of it was placed
    listed = api.request("GET", "/orders", as_party=customer)
    assert (listed.status, listed.body["orders"]) == (200, []), listed
    # AND the order accepted before completes
    assert api.finish(accepted)["status"] == "COMPLETED"
    # WHEN the customer places it again once the orders in flight went on, THEN it is placed
    # and completes
    assert api.complete(order)["status"] == "COMPLETED"
