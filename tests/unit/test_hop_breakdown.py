"""Unit tests: how the hop breakdown cuts a hop into stages from an order's trace segments."""

from __future__ import annotations

from typing import Any

from tools.hop_breakdown import LAST_STAGE, order_hops

TRACE = "1-order"


def document(name: str, start: float, end: float, **fields: Any) -> dict[str, Any]:
    return (
        {"id": f"{name}-{start}", "name": name, "trace_id": TRACE}
        | {
            "start_time": start,
            "end_time": end,
        }
        | fields
    )


def call(service: str, operation: str, start: float, end: float, **fields: Any) -> dict[str, Any]:
    return document(service, start, end, aws={"operation": operation}, **fields)


def at(seconds: float) -> str:
    return f"2026-12-03T10:00:{seconds:06.3f}+00:00"


def test_a_choreographed_hop_is_cut_at_the_write_the_relay_its_publish_and_the_consumer() -> None:
    # GIVEN an order placed at :01.000 and told to the restaurant at :01.300, and its trace
    base = 1796292001.0  # 2026-12-03T10:00:01Z
    order = {
        "order_id": "o-1",
        "flow": "choreography",
        "timeline": [
            {"type": "order_placed", "occurred_at": at(1.0)},
            {"type": "restaurant_notified", "occurred_at": at(1.3)},
        ],
    }
    documents = [
        document("POST /orders", base - 0.01, base + 0.06, annotations={"order_id": "o-1"}),
        call("ssm", "GetParameter", base + 0.0, base + 0.01),
        call("dynamodb", "TransactWriteItems", base + 0.01, base + 0.05),
        # the client's polling read of the order, in the order's trace: not on the hop
        document("GET /orders/{order_id}", base + 0.06, base + 0.2, id="get"),
        call("dynamodb", "Query", base + 0.07, base + 0.19, parent_id="get"),
        document("relay", base + 0.10, base + 0.15),
        call("sns", "Publish", base + 0.11, base + 0.15),
        document("orders-local-restaurant_notifier", base + 0.21, base + 0.4),
        call("dynamodb", "Query", base + 0.22, base + 0.28),
        # another order's trace: not this order's
        call("dynamodb", "Query", base + 0.0, base + 0.3, trace_id="1-other"),
    ]
    # WHEN it is cut
    stages, calls = order_hops(order, documents)["placed -> restaurant notified"]
    # THEN each stage runs from the previous cut to its own, and they add up to the hop
    assert {label: round(ms) for label, ms in stages.items()} == {
        "the step's write, after its stamp": 50,
        "table stream -> relay's step": 50,
        "relay, up to its Publish": 10,
        "relay's Publish": 40,
        "SNS -> SQS -> restaurant_notifier": 60,
        LAST_STAGE: 90,
    }
    assert round(sum(stages.values())) == 300
    # AND the AWS calls on it are this order's, without the client's polling
    assert {name: round(ms) for name, ms in calls.items()} == {
        "ssm GetParameter": 10,
        "dynamodb TransactWriteItems": 40,
        "sns Publish": 40,
        "dynamodb Query": 60,
    }


def test_a_hop_whose_trace_lacks_a_cut_is_left_out() -> None:
    order = {
        "order_id": "o-2",
        "flow": "orchestration",
        "timeline": [
            {"type": "order_accepted", "occurred_at": at(1.0)},
            {"type": "user_notified", "occurred_at": at(1.1)},
        ],
    }
    # only the task's write: no segment of either task reached the daemon
    documents = [
        call("dynamodb", "TransactWriteItems", 1796292001.0, 1796292001.02),
        document("accept_order", 1796292000.99, 1796292001.03, annotations={"order_id": "o-2"}),
    ]
    assert order_hops(order, documents) == {}


def test_a_hop_is_cut_the_same_when_each_steps_calls_come_inside_its_document() -> None:
    # GIVEN a choreographed hop whose request and relay step each arrived as one document with
    # their AWS calls nested in it (how the functions send them: chalicelib/tracing.py)
    base = 1796292001.0
    told = [("order_placed", 1.0), ("restaurant_notified", 1.3)]
    timeline = [{"type": event, "occurred_at": at(seconds)} for event, seconds in told]
    order = {"order_id": "o-3", "flow": "choreography", "timeline": timeline}
    request = document("POST /orders", base - 0.01, base + 0.06, annotations={"order_id": "o-3"})
    write = call("dynamodb", "TransactWriteItems", base + 0.01, base + 0.05)
    relay = document("relay", base + 0.10, base + 0.15)
    publish = call("sns", "Publish", base + 0.11, base + 0.15)
    consumer = document("orders-local-restaurant_notifier", base + 0.21, base + 0.4)
    flat = [request, write, relay, publish, consumer]
    nested = [request | {"subsegments": [write]}, relay | {"subsegments": [publish]}, consumer]
    # WHEN it is cut from each
    # THEN the stages and the calls are the same
    assert order_hops(order, flat) != {}
    assert order_hops(order, nested) == order_hops(order, flat)
