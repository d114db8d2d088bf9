"""End to end in a real browser: headless Chromium (Debian's) driven by Playwright.

These prove the browser infrastructure (tests/e2e/browser.py): a page served by ``chalice
local`` opens cleanly and leaves a screenshot under build/screenshots/, and a page that logs a
console error, throws or loses a request does fail the check. Tests of the pages a person uses
go beside them, named ``test_viewer_*``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import Page, expect

from localdev.orders_api import HAPPY_PATH, OrdersApi
from tests.e2e.browser import assert_no_browser_errors, browser_problems, save_screenshot
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e

BROKEN_PAGE = """<!doctype html>
<title>broken on purpose</title>
<h1>This page logs an error</h1>
<img src="http://127.0.0.1:9/missing.png" alt="">
<script>
  console.log("fine");
  console.error("boom: something broke");
</script>
<script>throw new Error("uncaught on purpose");</script>
"""


def test_browser_opens_the_openapi_description_from_chalice_local(
    page: Page, local_api: OrdersApi
) -> None:
    response = page.goto(f"{local_api.base_url}/openapi.json")
    assert response is not None and response.ok, response and response.status
    described = json.loads(page.locator("body").inner_text())
    assert "/orders" in described["paths"]
    assert_no_browser_errors(page)
    screenshot = save_screenshot(page, "openapi-json")
    assert screenshot.stat().st_size > 1000


def test_browser_console_errors_page_errors_and_failed_requests_fail_the_check(
    page: Page,
) -> None:
    page.set_content(BROKEN_PAGE)
    for _ in range(40):  # the events may arrive just after set_content returns
        if len(browser_problems(page)) >= 3:
            break
        page.wait_for_timeout(50)
    problems = "\n".join(browser_problems(page))
    assert "console.error" in problems and "boom: something broke" in problems
    assert "uncaught error" in problems and "uncaught on purpose" in problems
    assert "request failed: GET http://127.0.0.1:9/missing.png" in problems
    assert "fine" not in problems
    with pytest.raises(AssertionError, match="boom: something broke"):
        assert_no_browser_errors(page)
    # Each kind can be allowed on purpose; nothing else is.
    assert_no_browser_errors(page, ignore=["boom", "uncaught on purpose", "missing.png"])
    save_screenshot(page, "broken-on-purpose")


def test_viewer_shows_each_flows_order_with_its_steps_in_order_and_its_trace(
    page: Page, local_api: OrdersApi
) -> None:
    # GIVEN one order per flow, played to delivery, for a restaurant of this test's own
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    placed = {
        flow: local_api.complete(an_order(flow) | {"restaurant_id": restaurant})["order_id"]
        for flow in ("choreography", "orchestration")
    }
    token = local_api.tokens("restaurant", restaurant)
    page.set_viewport_size({"width": 1900, "height": 1000})  # both diagrams side by side
    # WHEN the restaurant opens the viewer with a demo-login link
    page.goto(f"{local_api.base_url}/viewer#token={token}")
    # THEN it lists both orders and draws each flow's order, steps in the order they happened
    page.wait_for_selector("#orders tbody tr", timeout=20_000)
    listed = page.locator("#orders tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.orderId)"
    )
    assert set(listed) == set(placed.values())
    for flow, order_id in placed.items():
        diagram = page.locator(f"#flow-{flow} .diagram")
        expect(diagram).to_have_attribute("data-order-id", order_id, timeout=20_000)
        drawn = diagram.locator("g.step").evaluate_all("steps => steps.map(s => s.dataset.step)")
        events = [step for step in drawn if step in HAPPY_PATH]
        assert events == HAPPY_PATH, (flow, drawn)
        if flow == "orchestration":
            assert "NotifyRestaurant entered" in drawn
            assert drawn.index("AcceptOrder entered") < drawn.index("order_accepted")
        lanes = diagram.locator("text.lane-name").evaluate_all("ts => ts.map(t => t.textContent)")
        assert lanes[0].startswith("orders API"), lanes  # chalice local placed them
        # ... with the order's trace id and links to it in the console, each in a new tab
        trace_id = local_api.traces[order_id].split(";")[0].removeprefix("Root=")
        expect(diagram.locator("code.trace-id")).to_have_text(trace_id)
        for link, shows in (("a.trace-link", trace_id), ("a.order-traces-link", order_id)):
            anchor = diagram.locator(link)
            href = anchor.get_attribute("href") or ""
            assert href.startswith("https://") and "console.aws.amazon.com" in href, href
            assert shows in href and token not in href, href
            assert anchor.get_attribute("target") == "_blank"
            assert "noopener" in (anchor.get_attribute("rel") or "").split()
    assert "Signed in as restaurant" in page.locator("#who").inner_text()
    assert page.url.endswith("/viewer")  # the token left the address bar
    save_screenshot(page, "viewer")
    assert_no_browser_errors(page)


def test_viewer_without_a_token_asks_for_one_and_reports_a_bad_one(
    page: Page, local_api: OrdersApi
) -> None:
    page.goto(f"{local_api.base_url}/viewer")
    assert page.locator("#status-line").inner_text() == "No token yet."
    page.fill("#token", "not-a-token")
    page.click("#use-token")
    expect(page.locator("#status-line")).to_contain_text("401", timeout=10_000)
    # The refused request is the page's doing on purpose, not a fault of the page.
    assert_no_browser_errors(page, ignore=[r"401"])


def test_viewer_shows_a_hostile_trace_as_text_and_follows_only_https_links(
    page: Page, local_api: OrdersApi
) -> None:
    # GIVEN answers (intercepted in the browser) whose trace holds markup and a script link
    order_id = str(uuid.uuid4())
    listing = {
        "principal": "restaurant restaurant-7",
        "orders": [
            {
                "order_id": order_id,
                "flow": "choreography",
                "status": "PLACED",
                "customer_id": "customer-42",
                "restaurant_id": "restaurant-7",
                "placed_at": "2026-01-01T12:00:00.000+00:00",
                "age_seconds": 1.0,
                "overdue": False,
                "links": {"self": f"/orders/{order_id}"},
            }
        ],
    }
    hostile = '<img src=x onerror="window.injected=1">'
    timeline = {
        "order_id": order_id,
        "flow": "choreography",
        "status": "PLACED",
        "placed_at": "2026-01-01T12:00:00.000+00:00",
        "steps": [
            {
                "at": "2026-01-01T12:00:00.000+00:00",
                "service": "orders API",
                "step": "order_placed",
                "kind": "event",
                "since_placed_ms": 0,
                "since_previous_ms": 0,
            }
        ],
        "trace": {
            "trace_id": hostile,
            "console_url": "javascript:window.injected=1",
            "order_query_url": "https://example.invalid/traces",
        },
    }
    page.route(f"{local_api.base_url}/orders", lambda route: route.fulfill(json=listing))
    page.route(
        f"{local_api.base_url}/orders/{order_id}/timeline",
        lambda route: route.fulfill(json=timeline),
    )
    # WHEN the viewer draws the order
    page.goto(f"{local_api.base_url}/viewer#token=not-checked-here")
    diagram = page.locator("#flow-choreography .diagram")
    expect(diagram).to_have_attribute("data-order-id", order_id, timeout=20_000)
    # THEN the trace id is shown as text, no markup runs, and only the https link is a link
    expect(diagram.locator("code.trace-id")).to_have_text(hostile)
    assert diagram.locator("img").count() == 0
    assert diagram.locator("a.trace-link").count() == 0
    assert diagram.locator("a.order-traces-link").get_attribute("href") == (
        "https://example.invalid/traces"
    )
    assert page.evaluate("window.injected") is None
    assert_no_browser_errors(page)
