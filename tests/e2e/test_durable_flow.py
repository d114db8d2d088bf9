"""End to end, the durable style: the SAM deployment's durable function in the local cloud,
driven by AWS's own local runner (``dex-local-runner``, started beside the cloud by the deploy:
docs/durable.md).

The API places the order; the relay starts the execution at the runner; the runner invokes the
function in the local cloud, which checkpoints each step at the runner; the API's accept,
reject, cancel and complete complete its callbacks there. Every event still reaches the topic
(promotions issues its voucher) and the timeline shows the durable operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from localdev.orders_api import HAPPY_PATH, OrdersApi, eventually
from tests.e2e.browser import assert_no_browser_errors, save_screenshot
from tests.e2e.conftest import SCENARIOS, an_order, tap_on
from tests.e2e.support import Tap
from tests.e2e.test_promotions import voucher

pytestmark = [pytest.mark.e2e, SCENARIOS]

SERVICE = "order-flow durable function"


@pytest.fixture(scope="module")
def sam_events(local_cloud: Any, sam_deployment: dict[str, Any]) -> Iterator[Tap]:
    yield from tap_on(local_cloud, sam_deployment["events_topic_arn"], "sam-durable-events")


def published(events: Tap, order_id: str, count: int) -> list[str]:
    seen = eventually(
        lambda: (found := events.about(order_id)) and len(found) >= count and found,
        20,
        f"{count} events of order {order_id} on the topic",
    )
    assert {event["flow"] for event in seen} == {"durable"}
    return [event["type"] for event in sorted(seen, key=lambda event: event["occurred_at"])]


def durable_steps(api: OrdersApi, order_id: str) -> list[dict[str, Any]]:
    """The order's timeline once its execution has ended."""
    customer, _ = api.parties[order_id]

    def ended() -> list[dict[str, Any]] | None:
        answer = api.request("GET", f"/orders/{order_id}/timeline", as_party=customer)
        assert answer.status == 200, answer
        steps: list[dict[str, Any]] = answer.body["steps"]
        return steps if steps[-1]["step"].startswith("execution ") else None

    return eventually(ended, 20, f"the execution of order {order_id} ends")


def states(steps: list[dict[str, Any]]) -> list[str]:
    return [s["step"] for s in steps if s["kind"] == "state"]


def test_a_durable_order_accepted_and_delivered_reaches_promotions(
    sam_api: OrdersApi, sam_events: Tap, local_cloud: Any, sam_deployment: dict[str, Any]
) -> None:
    order = sam_api.complete(an_order("durable"))
    order_id = order["order_id"]

    assert order["flow"] == "durable"
    assert [e["type"] for e in order["timeline"]] == HAPPY_PATH
    assert published(sam_events, order_id, len(HAPPY_PATH)) == HAPPY_PATH
    issued = eventually(lambda: voucher(local_cloud, sam_deployment, order_id), 20, "a voucher")
    assert int(issued["amount_cents"]["N"]) == order["total_cents"] // 10

    steps = durable_steps(sam_api, order_id)
    ran = states(steps)
    assert ran[0] == "execution started" and ran[-1] == "execution succeeded"
    for step in ("NotifyRestaurant", "AcceptOrder", "NotifyUserAndAwaitDelivery", "CompleteOrder"):
        assert ran.index(f"{step} entered") < ran.index(f"{step} exited"), step
    assert {s["service"] for s in steps if s["kind"] == "state"} == {SERVICE}


def test_a_durable_order_rejected_then_cancelled_orders_answers(sam_api: OrdersApi) -> None:
    rejected = sam_api.place(an_order("durable"))
    cancelled = sam_api.place(an_order("durable"))
    for order_id in (rejected, cancelled):
        sam_api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert sam_api.act(rejected, "reject", {"reason": "out of dough"}).status == 202
    assert sam_api.act(cancelled, "cancel").status == 202

    order = sam_api.wait_for(rejected, "REJECTED", user_notified=1)
    assert [e["type"] for e in order["timeline"]][2:] == ["order_rejected", "user_notified"]
    assert order["timeline"][2]["data"]["reason"] == "out of dough"
    ran = states(durable_steps(sam_api, rejected))
    assert "RejectOrder exited" in ran and "AcceptOrder entered" not in ran
    assert ran[-1] == "execution succeeded"

    order = sam_api.wait_for(cancelled, "CANCELLED", user_notified=1)
    assert order["timeline"][2]["data"] == {"reason": "customer_request"}
    late = sam_api.act(cancelled, "accept")
    assert (late.status, late.body["code"]) == (409, "decision_taken"), late
    ran = states(durable_steps(sam_api, cancelled))
    assert "NotifyUser exited" in ran and "AcceptOrder entered" not in ran


def test_the_viewer_draws_a_durable_order_with_its_durable_steps(
    page: Page, sam_api: OrdersApi
) -> None:
    # GIVEN a durable order played to delivery, for a restaurant of this test's own
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    order_id = sam_api.complete(an_order("durable") | {"restaurant_id": restaurant})["order_id"]
    durable_steps(sam_api, order_id)
    token = sam_api.tokens("restaurant", restaurant)
    page.set_viewport_size({"width": 2400, "height": 1000})
    # WHEN the restaurant opens the viewer
    page.goto(f"{sam_api.base_url}/viewer#token={token}")
    # THEN the durable panel draws it: its events in order, woven with the durable operations
    diagram = page.locator("#flow-durable .diagram")
    expect(diagram).to_have_attribute("data-order-id", order_id, timeout=20_000)
    drawn = diagram.locator("g.step").evaluate_all("steps => steps.map(s => s.dataset.step)")
    assert [step for step in drawn if step in HAPPY_PATH] == HAPPY_PATH, drawn
    assert drawn.index("NotifyRestaurant entered") < drawn.index("restaurant_notified")
    assert drawn[-1] == "execution succeeded"
    lanes = diagram.locator("text.lane-name").evaluate_all("ts => ts.map(t => t.textContent)")
    assert SERVICE in lanes, lanes
    save_screenshot(page, "viewer-durable")
    assert_no_browser_errors(page)
