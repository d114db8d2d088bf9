"""End to end: promotions builds on order_completed from either flow, and is optional."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.subscriptions import PROMOTIONS
from localdev.orders_api import HAPPY_PATH, OrdersApi, eventually, stays_false
from tests.e2e.conftest import SCENARIOS, an_order

pytestmark = pytest.mark.e2e


def voucher(cloud: Any, deployment: dict[str, Any], order_id: str) -> dict[str, Any] | None:
    item = cloud.client("dynamodb").get_item(
        TableName=deployment["vouchers_table"],
        Key={"voucher_id": {"S": f"order-{order_id}"}},
        ConsistentRead=True,
    )
    return item.get("Item")


def test_promotions_issue_a_voucher_for_either_flow(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any], flow: str
) -> None:
    order = api.complete(an_order(flow))
    issued = eventually(
        lambda: voucher(local_cloud, chalice_deployment, order["order_id"]), 60, "a voucher"
    )
    assert issued["customer_id"]["S"] == order["customer_id"]
    assert int(issued["amount_cents"]["N"]) == order["total_cents"] // 10


@pytest.fixture
def promotions_unsubscribed(local_cloud: Any, sam_deployment: dict[str, Any]) -> Iterator[None]:
    """Take the SAM deployment's promotions service off its topic, and put it back afterwards.

    Only the tests of the ``scenarios`` group use that deployment, one at a time: no other
    test's order misses its voucher meanwhile."""
    sns = local_cloud.client("sns")
    sqs = local_cloud.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=sam_deployment["queues"][PROMOTIONS.service])[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    topic = sam_deployment["events_topic_arn"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    (subscription,) = [s for s in subscriptions if s["Endpoint"] == queue_arn]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
        "Attributes"
    ]
    sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    yield
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            k: attributes[k] for k in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope")
        },
    )


@SCENARIOS
@pytest.mark.usefixtures("promotions_unsubscribed")
def test_without_promotions_the_flow_is_unchanged(
    sam_api: OrdersApi, local_cloud: Any, sam_deployment: dict[str, Any], flow: str
) -> None:
    order = sam_api.complete(an_order(flow))
    assert [e["type"] for e in order["timeline"]] == HAPPY_PATH
    # With promotions subscribed, a voucher appears within about a second (test above).
    stays_false(
        lambda: voucher(local_cloud, sam_deployment, order["order_id"]),
        5,
        "a voucher was issued with promotions unsubscribed",
    )
