"""The durable style's two deadline outcomes, on the local stage's SAM deployment (too long for
``make test``: the local stage's deadlines are 20 s and 45 s).

    AWS_ENDPOINT_URL=http://127.0.0.1:4566 .venv/bin/python -m tools.durable_deadlines

One durable order the restaurant never answers (cancelled at its deadline, a late accept
refused) and one accepted whose delivery is never confirmed (undelivered at its deadline); for
each, its events and the durable operations of its timeline. Exits 1 if either ends otherwise.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from deploy.stages import Deployment, DeployPath, load_stage
from localdev.orders_api import OrdersApi

LOCAL = load_stage("local")
SAM = Deployment(LOCAL, DeployPath.SAM)
ORDER = {
    "flow": "durable",
    "customer_id": "customer-deadlines",
    "restaurant_id": "restaurant-7",
    "items": [{"name": "Margherita", "quantity": 1, "unit_price_cents": 950}],
}
# Room past each deadline for the deadline step's own retries (chalicelib/entrypoints/durable.py).
MARGIN_SECONDS = 30


def outcome(api: OrdersApi, order_id: str, status: str, deadline: int) -> list[str]:
    order = api.wait_for(order_id, status, timeout=deadline + MARGIN_SECONDS, poll=1)
    customer, _ = api.parties[order_id]
    steps = api.request("GET", f"/orders/{order_id}/timeline", as_party=customer).body["steps"]
    print(f"{status}: order {order_id}")
    for event in order["timeline"]:
        print(f"  event  {event['type']} {json.dumps(event.get('data', {}))[:80]}")
    states = [step["step"] for step in steps if step["kind"] == "state"]
    print(f"  durable operations: {', '.join(states)}")
    return states


def main() -> int:
    api = OrdersApi(json.loads(SAM.outputs_file.read_text())["api_url"])
    unanswered = api.place(ORDER)
    undelivered = api.place(ORDER)
    api.wait_for(undelivered, "RESTAURANT_NOTIFIED")
    accepted = api.act(undelivered, "accept").status
    states: dict[str, Any] = {
        "cancel": outcome(api, unanswered, "CANCELLED", LOCAL.restaurant_deadline_seconds),
        "expire": outcome(api, undelivered, "UNDELIVERED", LOCAL.delivery_deadline_seconds),
    }
    late = api.act(unanswered, "accept")
    print(f"late accept of the cancelled order: {late.status} {late.body.get('code')}")
    ok = (
        accepted == 202
        and "CancelAtDeadline exited" in states["cancel"]
        and "ExpireDelivery exited" in states["expire"]
        and (late.status, late.body.get("code")) == (409, "deadline_passed")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
