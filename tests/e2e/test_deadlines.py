"""End to end: every wait has a deadline and an owner, and nothing is stuck.

- An orchestrated order whose execution ended while it waited (stopped here, as when a task's
  retries run out) is carried on by the sweeper, and the restaurant completes it through the
  API (no 409 workflow_not_waiting).
- An order not delivered by the delivery deadline is ended by the deadline's owner (the
  sweeper in the choreography, the execution's timeout in the orchestration): UNDELIVERED,
  its customer and its restaurant each told once; a confirmation just after the deadline is
  409 deadline_passed (before or after the owner acted), one just before it stands.
- A restaurant that was sent an order is told when the customer cancels it.

The sweeper runs every minute on its schedule; these tests invoke the deployed function
directly (a real Lambda invocation, as the schedule's) once the order's deadline has passed,
so that they do not wait for the next minute. The schedule may run it too at the same
moment: each step it runs is idempotent, so the outcome is the same.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.stages import load_stage
from localdev.orders_api import HAPPY_PATH, OrdersApi, eventually
from tests.e2e.conftest import an_order
from tests.e2e.support import Tap

pytestmark = pytest.mark.e2e

LOCAL = load_stage("local")
# What EventBridge hands a scheduled function (Chalice reads it as a CloudWatchEvent).
SCHEDULED_EVENT = {
    "version": "0",
    "id": "e2e-sweep",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000000",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def sweep(cloud: Any, deployment: dict[str, Any]) -> dict[str, Any]:
    """Invoke the deployed sweeper once, as its schedule does; what it did."""
    answer = cloud.client("lambda").invoke(
        FunctionName=deployment["functions"]["sweeper"], Payload=json.dumps(SCHEDULED_EVENT)
    )
    body = answer["Payload"].read()
    assert "FunctionError" not in answer, body
    return dict(json.loads(body))


def wait_until(deadline: datetime, past: float = 1) -> None:
    """Sleep until ``past`` seconds after ``deadline`` (the sweeper only acts after it);
    a negative ``past``: until that long before it."""
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + past))


def occurred(order: dict[str, Any], event_type: str) -> datetime:
    (event,) = [e for e in order["timeline"] if e["type"] == event_type]
    return datetime.fromisoformat(event["occurred_at"])


def still_waiting(cloud: Any, deployment: dict[str, Any], order_id: str) -> bool:
    item = cloud.client("dynamodb").get_item(
        TableName=deployment["orders_table"],
        Key={"pk": {"S": order_id}, "sk": {"S": "ORDER"}},
        ConsistentRead=True,
    )["Item"]
    return "waiting" in item or "due_at" in item


def recorders(api: OrdersApi, order_id: str) -> dict[str, str]:
    """Which service recorded each event of the order, from its timeline."""
    customer = api.parties[order_id][0]
    answer = api.request("GET", f"/orders/{order_id}/timeline", as_party=customer)
    assert answer.status == 200, answer
    return {s["step"]: s["service"] for s in answer.body["steps"] if s["kind"] == "event"}


def test_the_sweeper_runs_every_minute(
    local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    events = local_cloud.client("events")
    names = events.list_rule_names_by_target(TargetArn=chalice_deployment["functions"]["sweeper"])[
        "RuleNames"
    ]
    (rule,) = [events.describe_rule(Name=name) for name in names]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"


def accepted_after_its_execution_ended(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any]
) -> tuple[str, str] | None:
    """An orchestrated order accepted in time but never handed over (its state's task token
    lost), whose execution then ended while it waited (stopped, as when a task's retries run
    out): its id and execution. None if its deadline passed first (a busy machine), which
    leaves the deadline's cancellation, not an acceptance, to carry out.

    The execution is stopped after the answer: the local cloud ends a stopped execution only
    when its waiting state's timer fires, at the deadline, too late to answer after it."""
    order_id = api.place(an_order("orchestration"))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    local_cloud.client("dynamodb").update_item(
        TableName=chalice_deployment["orders_table"],
        Key={"pk": {"S": order_id}, "sk": {"S": "ORDER"}},
        UpdateExpression="SET callback_token = :lost",
        ExpressionAttributeValues={":lost": {"S": "e2e-a-token-no-state-holds"}},
    )
    # The answer is recorded, though no state gets it
    answer = api.act(order_id, "accept")
    if answer.status == 409 and answer.body.get("code") == "deadline_passed":
        placed = occurred(api.order(order_id), "order_placed")
        deadline = placed + timedelta(seconds=LOCAL.restaurant_deadline_seconds)
        assert datetime.now(UTC) >= deadline, answer  # refused in time: a bug
        return None
    assert answer.status == 202, answer
    sfn = local_cloud.client("stepfunctions")
    execution = (
        chalice_deployment["state_machine_arn"].replace(":stateMachine:", ":execution:")
        + f":{order_id}"
    )
    sfn.stop_execution(executionArn=execution, cause="e2e: as if a task's retries ran out")
    eventually(
        lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING",
        LOCAL.restaurant_deadline_seconds + 10,
        f"execution {order_id} ended",
    )
    return order_id, execution


def test_an_orchestrated_order_whose_execution_ended_is_carried_on_and_completed(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    # GIVEN an orchestrated order whose execution ended while it waited for the restaurant
    # AND the restaurant accepts it before its deadline (tried again with a new order if the
    # machine was so busy that the deadline came first)
    given = None
    for _ in range(3):
        given = accepted_after_its_execution_ended(api, local_cloud, chalice_deployment)
        if given is not None:
            break
    assert given is not None, "the deadline came before the acceptance three times in a row"
    order_id, execution = given
    sfn = local_cloud.client("stepfunctions")
    # WHEN the sweeper runs past the order's deadline (the restaurant's)
    placed = occurred(api.order(order_id), "order_placed")
    wait_until(placed + timedelta(seconds=LOCAL.restaurant_deadline_seconds))
    swept = sweep(local_cloud, chalice_deployment)
    assert order_id not in swept["failed"], swept
    # THEN the recorded acceptance was carried out and the customer told, by the sweeper
    api.wait_for(order_id, "USER_NOTIFIED")
    # AND the restaurant completes it through the API: no 409, the order is completed
    completed = api.act(order_id, "complete")
    assert completed.status == 202, completed
    order = api.wait_for(order_id, "COMPLETED")
    assert [entry["type"] for entry in order["timeline"]] == HAPPY_PATH
    services = recorders(api, order_id)
    assert services["order_accepted"] == "sweeper"
    assert services["user_notified"] == "sweeper"
    assert services["order_completed"] == "orders API"
    # (the execution stayed ended: the order went on without it)
    assert sfn.describe_execution(executionArn=execution)["status"] != "RUNNING"
    assert not still_waiting(local_cloud, chalice_deployment, order_id)


@pytest.mark.long_running(seconds=70)
def test_an_order_not_delivered_by_its_deadline_is_ended_and_both_parties_told_once(
    api: OrdersApi,
    notifications: Tap,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
) -> None:
    # GIVEN an order of each flow accepted, its customer told, and never delivered (both at
    # once: their deadlines pass together); and one more of each, confirmed just before
    flows = ("choreography", "orchestration")
    orders = {flow: api.place(an_order(flow)) for flow in flows}
    confirmed = {flow: api.place(an_order(flow)) for flow in flows}
    for order_id in [*orders.values(), *confirmed.values()]:
        api.wait_for(order_id, "RESTAURANT_NOTIFIED")
        assert api.act(order_id, "accept").status == 202
    delivery = timedelta(seconds=LOCAL.delivery_deadline_seconds)
    told = {
        id_: occurred(api.wait_for(id_, "USER_NOTIFIED"), "user_notified")
        for id_ in [*orders.values(), *confirmed.values()]
    }
    # WHEN the restaurant confirms one order of each flow just before its deadline, and the
    # other just after (before the sweeper, the choreography's owner, is run)
    in_time = {}
    for order_id in confirmed.values():
        wait_until(told[order_id] + delivery, past=-3)
        in_time[order_id] = api.act(order_id, "complete")
    wait_until(max(told[id_] for id_ in orders.values()) + delivery)
    for flow, order_id in orders.items():
        late = api.act(order_id, "complete")
        assert (late.status, late.body.get("code")) == (409, "deadline_passed"), (flow, late)
    # AND the deadline's owners act: the sweeper for the choreographed orders, the orchestrated
    # orders' executions their own (NotifyUserAndAwaitDelivery times out)
    sweep(local_cloud, chalice_deployment)
    # THEN a confirmation's answer and its order's end agree: 202 and COMPLETED (as when it
    # came in time), or 409 deadline_passed and UNDELIVERED (a busy machine made it late)
    for order_id in confirmed.values():
        answer = in_time[order_id]
        if answer.status == 202:
            api.wait_for(order_id, "COMPLETED")
        else:
            assert (answer.status, answer.body.get("code")) == (409, "deadline_passed"), answer
            api.wait_for(order_id, "UNDELIVERED")
    # THEN each order is closed as undelivered, by the deadline's owner
    owners = {"choreography": "sweeper", "orchestration": "expire_delivery_task"}
    for flow, order_id in orders.items():
        order = api.wait_for(order_id, "UNDELIVERED")
        undelivered = order["timeline"][-1]
        assert undelivered["type"] == "order_undelivered"
        assert undelivered["data"]["deadline_seconds"] == LOCAL.delivery_deadline_seconds
        assert recorders(api, order_id)["order_undelivered"] == owners[flow], flow

        # AND the customer and the restaurant are each told, once
        def told_of(order_id: str = order_id) -> list[dict[str, Any]]:
            about = notifications.about(order_id)
            return [n for n in about if n["notification_id"].endswith("/undelivered")]

        both = eventually(lambda: len(told_of()) >= 2 and told_of(), 20, f"both told ({flow})")
        assert sorted(n["notification_id"] for n in both) == [
            f"{order_id}/customer/undelivered",
            f"{order_id}/restaurant/undelivered",
        ]
        recipients = {n["notification_id"].split("/")[1]: n["recipient"] for n in both}
        assert recipients == {
            "customer": order["customer_id"],
            "restaurant": order["restaurant_id"],
        }
        # AND a late confirmation is still refused as late, and nothing is left to watch
        late = api.act(order_id, "complete")
        assert (late.status, late.body.get("code")) == (409, "deadline_passed"), late
        assert not still_waiting(local_cloud, chalice_deployment, order_id)


def test_a_restaurant_that_was_sent_an_order_is_told_of_its_cancellation(
    api: OrdersApi, notifications: Tap, flow: str
) -> None:
    # GIVEN an order its restaurant was sent
    order_id = api.place(an_order(flow))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    # WHEN the customer cancels it
    assert api.act(order_id, "cancel").status == 202
    order = api.wait_for(order_id, "CANCELLED", user_notified=1)

    # THEN the restaurant is told, once, that it is cancelled and why
    def to_restaurant() -> list[dict[str, Any]]:
        about = f"{order_id}/restaurant/cancelled"
        return [n for n in notifications.about(order_id) if n["notification_id"] == about]

    (told,) = eventually(to_restaurant, 20, "the restaurant told of the cancellation")
    assert told["recipient"] == order["restaurant_id"]
    assert "the customer cancelled it" in told["text"]
    assert len(to_restaurant()) == 1
