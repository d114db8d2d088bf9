"""End to end: a function that crashes right after its write loses nothing (the outbox).

The fault switch (``localdev/faults/``, which the local cloud attaches to a local stage's
functions) makes the named functions fail right after each order write succeeded, as a crash
would: the caller never learns that the write happened, and nothing the function would have
done after it is done. What the write causes still happens, because it leaves from the table:
the relay publishes the recorded event and starts the orchestrated order's workflow.

They crash the SAM deployment's functions: only the tests of the ``scenarios`` group use that
deployment, one at a time, so no other test meets the crashes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from deploy import template
from deploy.stages import Deployment, DeployPath, load_stage
from localdev.faults import MAX_AGE_SECONDS, OFF
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import SCENARIOS, an_order
from tests.e2e.support import Tap

pytestmark = [pytest.mark.e2e, SCENARIOS]
SAM_LOCAL = Deployment(load_stage("local"), DeployPath.SAM)

FLOWS = ("choreography", "orchestration")


@contextmanager
def crashing_after_writes(cloud: Any, *functions: str) -> Iterator[None]:
    """The SAM deployment's named functions crash after every order write, until the block ends."""
    ssm = cloud.client("ssm")
    name = template.faults_parameter_name(SAM_LOCAL)

    def switch(value: dict[str, Any]) -> None:
        ssm.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)
        time.sleep(MAX_AGE_SECONDS + 1)  # every warm function has read the switch again

    switch({"crash_after_write_in": list(functions)})
    try:
        yield
    finally:
        switch(OFF)


def crashed_after_writing(cloud: Any, function: str, order_id: str) -> bool:
    """The function's log says the switch crashed it after a write of the order."""
    group = "/aws/lambda/" + SAM_LOCAL.function_name(function)
    pages = cloud.client("logs").get_paginator("filter_log_events").paginate(logGroupName=group)
    return any(
        '"injected fault"' in event["message"] and order_id in event["message"]
        for page in pages
        for event in page["events"]
    )


def placed_after_a_crash(api: OrdersApi, order: dict[str, Any]) -> str:
    """Place ``order`` while the API crashes after its write: 503, yet the order is stored."""
    answer = api.place_answer(order)
    assert answer.status == 503, answer
    assert "order_id" not in answer.body
    customer = ("customer", order["customer_id"])
    listed = api.request("GET", "/orders", as_party=customer).body["orders"]
    (stored,) = listed  # a fresh customer: the one order the crashed request wrote
    api.parties[stored["order_id"]] = (customer, ("restaurant", order["restaurant_id"]))
    return str(stored["order_id"])


def test_an_order_whose_placing_request_crashed_after_the_write_still_goes_ahead(
    sam_api: OrdersApi, sam_notifications: Tap, local_cloud: Any
) -> None:
    orders = {flow: an_order(flow) for flow in FLOWS}
    with crashing_after_writes(local_cloud, "api_handler"):
        order_ids = {flow: placed_after_a_crash(sam_api, order) for flow, order in orders.items()}
    for flow, order_id in order_ids.items():
        # The relay published order_placed (choreography's notifier reacted) or started the
        # execution (only the workflow's task moves an orchestrated order on): nothing orphaned.
        sam_api.wait_for(order_id, "RESTAURANT_NOTIFIED", timeout=30, order_placed=1)
        told = eventually(
            lambda order_id=order_id: [  # type: ignore[misc]
                n for n in sam_notifications.about(order_id) if n["text"].startswith("New order")
            ],
            20,
            f"{flow}: the restaurant is told of the order",
        )
        assert len(told) == 1
        finished = sam_api.finish(order_id)
        assert [e["type"] for e in finished["timeline"]].count("order_placed") == 1, flow


def test_a_deadline_whose_cancellation_crashed_after_the_write_still_tells_the_customer(
    sam_api: OrdersApi, sam_notifications: Tap, local_cloud: Any
) -> None:
    """The redelivered deadline (choreography) or the retried task (orchestration) finds the
    order cancelled; the relay still published order_cancelled, so the customer is told."""
    with crashing_after_writes(local_cloud, "restaurant_deadline_checker", "cancel_order_task"):
        order_ids = {flow: sam_api.place(an_order(flow)) for flow in FLOWS}
        for flow, order_id in order_ids.items():
            order = sam_api.wait_for(order_id, "CANCELLED", timeout=60, user_notified=1)
            types = [e["type"] for e in order["timeline"]]
            assert types.count("order_cancelled") == 1, (flow, types)
    crashed = {"choreography": "restaurant_deadline_checker", "orchestration": "cancel_order_task"}
    for flow, order_id in order_ids.items():
        assert crashed_after_writing(local_cloud, crashed[flow], order_id), flow
        # (the restaurant, which was sent the order, is told of the cancellation too)
        told = [n["notification_id"] for n in sam_notifications.about(order_id)]
        to_customer = [n for n in told if n == f"{order_id}/customer/cancelled"]
        assert len(to_customer) == 1, (flow, told)
