"""End to end: a poison message is dead-lettered, and the messages beside it are not held up.

Its scenario begins with the session (``slow_scenarios``); this module's name sorts it after
the order-flow tests, so its wait has mostly passed by the time it looks.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.subscriptions import RESTAURANT_DEADLINE
from deploy import template
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import SCENARIOS, SlowScenarios
from tests.e2e.dead_letters import dead_lettered_within
from tests.e2e.support import queue_url

pytestmark = [pytest.mark.e2e, SCENARIOS]


def test_a_poison_message_lands_in_the_dead_letter_queue_and_nothing_else_is_affected(
    api: OrdersApi, local_cloud: Any, slow_scenarios: SlowScenarios
) -> None:
    # GIVEN a message no handler can read, sent to the restaurant-deadline queue when the
    # session began, beside the deadline of an order its restaurant never answers
    dlq_url = queue_url(local_cloud, f"{slow_scenarios.poisoned_queue}-dlq")
    sqs = local_cloud.client("sqs")

    def poison_in_dlq() -> list[dict[str, Any]]:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        mine = [m for m in messages if m["Body"] == slow_scenarios.poison]
        for message in mine:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return mine

    # THEN it reaches the dead-letter queue: max_receive_count receives (deploy/stages.json), a
    # visibility timeout (6 x the function's timeout) apart, plus the poller's pace
    within = dead_lettered_within(RESTAURANT_DEADLINE)
    (dead,) = eventually(
        poison_in_dlq, within, "the poison message in the dead-letter queue", every=1
    )
    assert dead["Body"] == slow_scenarios.poison
    # AND the real deadline beside it still cancelled its order
    order_id = slow_scenarios.unanswered["choreography"]
    cancelled = api.wait_for(order_id, "CANCELLED", timeout=60)
    assert cancelled["timeline"][2]["data"] == {"reason": "restaurant_timeout"}


def test_every_queue_consumer_reports_partial_batch_failures_on_both_deploy_paths(
    local_cloud: Any, chalice_deployment: dict[str, Any], sam_deployment: dict[str, Any]
) -> None:
    # What keeps a poison message from holding its batch back: each consumer's SQS mapping
    # returns only the failed records to the queue (Powertools' batch processor reports them).
    lambda_client = local_cloud.client("lambda")
    for deployment in (chalice_deployment, sam_deployment):
        for handler, subscription in template.QUEUE_HANDLERS.items():
            function = f"{deployment['prefix']}-{handler}"
            (mapping,) = lambda_client.list_event_source_mappings(FunctionName=function)[
                "EventSourceMappings"
            ]
            assert mapping["EventSourceArn"].endswith(
                f":{subscription.queue_for(deployment['prefix'])}"
            )
            # (Not its State: the local cloud can record a mapping whose poller it replaced as
            # Disabled while the new poller runs; deploy/event_sources.py.)
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function
