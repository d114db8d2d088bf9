"""Place one order through each flow, play the restaurant, print both timelines side by side."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from localdev.orders_api import OrdersApi

ORDER = json.loads(
    (
        Path(__file__).resolve().parents[1] / "tests" / "events" / "place_order_request.json"
    ).read_text()
)
FLOWS = ("choreography", "orchestration")


def side_by_side(orders: dict[str, dict[str, Any]]) -> str:
    """Each event with its time since the order was placed, one column per flow."""
    columns = {flow: _offsets(order) for flow, order in orders.items()}
    rows = max(len(column) for column in columns.values())
    width = 34
    lines = ["".join(f"{flow} ({orders[flow]['order_id'][:8]})".ljust(width) for flow in orders)]
    lines.append("-" * width * len(orders))
    for index in range(rows):
        lines.append(
            "".join(
                (columns[flow][index] if index < len(columns[flow]) else "").ljust(width)
                for flow in orders
            )
        )
    return "\n".join(lines)


def _offsets(order: dict[str, Any]) -> list[str]:
    times = [datetime.fromisoformat(entry["occurred_at"]) for entry in order["timeline"]]
    return [
        f"+{(moment - times[0]).total_seconds():6.2f}s  {entry['type']}"
        for entry, moment in zip(order["timeline"], times, strict=True)
    ]


def run(api: OrdersApi) -> None:
    orders = {flow: api.complete(ORDER | {"flow": flow}) for flow in FLOWS}
    print(side_by_side(orders))
