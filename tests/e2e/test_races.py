"""End to end, under real concurrency: requests and deliveries fired at the same moment.

- The restaurant's accept and reject and the customer's cancel, sent at once to one order:
  exactly one is answered 202, the others 409 naming it, and the order (and, orchestrated,
  the execution) ends as the winner says. Both flows, a few times each.
- Concurrent POST /orders with one Idempotency-Key: the same order for all, never 404.
- One genuine event delivered to 8 consumers at once: one effect, one notification.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_orders import DynamoDbOrderRepository
from chalicelib.adapters.sns_events import SnsEventPublisher
from chalicelib.adapters.sns_notifier import SnsNotifier
from chalicelib.bootstrap import new_id, utc_now
from chalicelib.orders import steps
from chalicelib.orders.deadlines import Deadlines
from chalicelib.orders.model import Flow, LineItem
from chalicelib.ports import Ports
from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from deploy.stages import load_stage
from localdev.orders_api import Answer, OrdersApi, eventually, stays_false
from tests.e2e.conftest import an_order
from tests.e2e.support import Tap

pytestmark = pytest.mark.e2e

REPETITIONS = 3
# The local stage's (deploy/stages.json): what the deployed functions compute deadlines from.
LOCAL = load_stage("local")
DEADLINES = Deadlines(
    restaurant=timedelta(seconds=LOCAL.restaurant_deadline_seconds),
    delivery=timedelta(seconds=LOCAL.delivery_deadline_seconds),
)
# Copies of one message delivered at once (each invoke gets an environment of its own).
COPIES = 8
ANSWERS = ("accept", "reject", "cancel")
# What each answer, winning, leaves: the order's status and the decision a loser is told.
OUTCOMES = {
    "accept": ("USER_NOTIFIED", {"outcome": "accepted"}),
    "reject": ("REJECTED", {"outcome": "rejected", "reason": "race"}),
    "cancel": ("CANCELLED", {"outcome": "cancelled", "reason": "customer_request"}),
}
# The state each winner leads the execution through (and the deadline's, which none reaches).
WINNER_STATES = {"accept": "AcceptOrder", "reject": "RejectOrder", "cancel": "NotifyUser"}


def at_once[T](calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(released, calls))


def entered_states(cloud: Any, deployment: dict[str, Any], order_id: str) -> list[str]:
    arn = deployment["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{order_id}"
    history = cloud.client("stepfunctions").get_execution_history(
        executionArn=arn, maxResults=1000
    )["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("Entered")]


def execution_status(cloud: Any, deployment: dict[str, Any], order_id: str) -> str:
    arn = deployment["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{order_id}"
    return str(cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"])


@pytest.mark.parametrize("repetition", range(REPETITIONS))
def test_accept_reject_and_cancel_at_once_one_wins_the_others_are_told_which(
    api: OrdersApi,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
    flow: str,
    repetition: int,
) -> None:
    order_id = api.place(an_order(flow))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    answers = list(ANSWERS)
    random.Random(repetition).shuffle(answers)  # who starts first varies

    def send(action: str) -> Callable[[], Answer]:
        body = {"reason": "race"} if action == "reject" else None
        return lambda: api.act(order_id, action, body)

    replies = dict(zip(answers, at_once([send(action) for action in answers]), strict=True))

    won = [action for action, reply in replies.items() if reply.status == 202]
    assert len(won) == 1, {action: (r.status, r.body) for action, r in replies.items()}
    (winner,) = won
    status, decision = OUTCOMES[winner]
    for action, reply in replies.items():
        if action != winner:
            assert reply.status == 409, (action, reply)
            assert reply.body["code"] == "decision_taken", (action, reply)
            assert reply.body["decision"] == decision, (action, reply)
    print(f"{flow} #{repetition}: sent {answers}, {winner} won, the others 409 naming it")

    order = api.wait_for(order_id, status, user_notified=1)
    types = [entry["type"] for entry in order["timeline"]]
    decisions = [t for t in types if t in {"order_accepted", "order_rejected", "order_cancelled"}]
    assert decisions == [f"order_{OUTCOMES[winner][1]['outcome']}"]
    if flow == "orchestration":
        entered = entered_states(local_cloud, chalice_deployment, order_id)
        assert WINNER_STATES[winner] in entered
        assert not {"CancelAtDeadline", "CancelAfterFailure"} & set(entered)
        assert len({"AcceptOrder", "RejectOrder"} & set(entered)) <= 1
        if winner == "accept":
            assert api.act(order_id, "complete").status == 202
        eventually(
            lambda: execution_status(local_cloud, chalice_deployment, order_id) == "SUCCEEDED",
            20,
            "the execution ends as the winner said",
        )


def test_concurrent_placements_with_one_key_are_one_order(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any], flow: str
) -> None:
    order = an_order(flow)
    key = f"race-{uuid.uuid4().hex[:8]}"
    replies = at_once([lambda: api.place_answer(order, **{"Idempotency-Key": key})] * 6)
    assert [reply.status for reply in replies] == [202] * 6, replies
    order_ids = {reply.body["order_id"] for reply in replies}
    assert len(order_ids) == 1, order_ids
    (order_id,) = order_ids
    placed = [e for e in api.order(order_id)["timeline"] if e["type"] == "order_placed"]
    assert len(placed) == 1
    if flow == "orchestration":
        assert execution_status(local_cloud, chalice_deployment, order_id) in {
            "RUNNING",
            "SUCCEEDED",
        }


def sqs_event(body: str, queue_arn: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping hands it over: one record."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "e2e",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_one_event_delivered_to_many_consumers_at_once_tells_once(
    api: OrdersApi,
    notifications: Tap,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
) -> None:
    # GIVEN a genuine order_placed, recorded by its order but never published, so that no
    # queue delivers it: the only deliveries are the copies below.
    sns = local_cloud.client("sns")
    ports = Ports(
        orders=DynamoDbOrderRepository(
            chalice_deployment["orders_table"], local_cloud.client("dynamodb"), "e2e", DEADLINES
        ),
        events=SnsEventPublisher(chalice_deployment["events_topic_arn"], sns),
        notifier=SnsNotifier(chalice_deployment["notifications_topic_arn"], sns),
        clock=utc_now,
        new_id=new_id,
    )
    request = an_order("choreography")
    placed = steps.place_order(
        steps.PlaceOrder(
            order_id=new_id(),
            customer_id=request["customer_id"],
            restaurant_id=request["restaurant_id"],
            items=tuple(LineItem(**item) for item in request["items"]),
            flow=Flow.CHOREOGRAPHY,
            request_fingerprint="e2e",
        ),
        ports,
    )
    order_id = placed.order_id
    api.parties[order_id] = (
        ("customer", request["customer_id"]),
        ("restaurant", request["restaurant_id"]),
    )
    queue = chalice_deployment["queues"][RESTAURANT_NOTIFIER.service]
    queue_arn = f"arn:aws:sqs:us-east-1:000000000000:{queue}"
    payload = json.dumps(sqs_event(json.dumps(placed.to_dict()), queue_arn))
    function = chalice_deployment["functions"]["restaurant_notifier"]
    lambda_ = local_cloud.client("lambda")
    # The environments exist before the race, so the invokes really overlap.
    at_once([lambda: lambda_.invoke(FunctionName=function, Payload=b'{"Records": []}')] * COPIES)

    # WHEN consumers get copies of it at the same moment
    def deliver() -> Any:
        return json.loads(lambda_.invoke(FunctionName=function, Payload=payload)["Payload"].read())

    replies = at_once([deliver] * COPIES)

    # THEN the order records it once and the restaurant is told once: the telling left with
    # the one event recorded (a consumer that lost the race finds it recorded).
    failed = [reply for reply in replies if reply != {"batchItemFailures": []}]
    print(f"{COPIES} deliveries at once; the consumers that failed (to be retried): {failed}")
    order = api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert [e["type"] for e in order["timeline"]].count("restaurant_notified") == 1

    def told() -> list[dict[str, Any]]:
        return [n for n in notifications.about(order_id) if n["text"].startswith("New order")]

    assert len(eventually(told, 20, "the restaurant is told")) == 1
    stays_false(lambda: len(told()) > 1, 2, "the restaurant was told twice")
