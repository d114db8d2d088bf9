"""End to end on the SAM deployment: one CloudFormation stack from ``chalice package``.

The same cases as the chalice-deploy path, on a second, separate copy of the
system (resources prefixed ``orders-sam``), to prove both deploys give the same result.
"""

from __future__ import annotations

import pytest

from localdev.orders_api import HAPPY_PATH, OrdersApi
from tests.e2e.conftest import SCENARIOS, an_order

pytestmark = [pytest.mark.e2e, SCENARIOS]


def test_sam_stack_runs_the_happy_path(sam_api: OrdersApi, flow: str) -> None:
    order = sam_api.complete(an_order(flow))
    assert [e["type"] for e in order["timeline"]] == HAPPY_PATH


def test_sam_stack_rejection_reaches_the_user(sam_api: OrdersApi, flow: str) -> None:
    order_id = sam_api.place(an_order(flow))
    sam_api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert sam_api.act(order_id, "reject", {"reason": "closed"}).status == 202
    sam_api.wait_for(order_id, "REJECTED", user_notified=1)
