"""End to end: a stream record the relay cannot relay is retried within bounds, then given up to
the relay's dead-letter queue while the stream moves on; redriven once its cause is fixed.

The poison: an event item written straight to the SAM deployment's orders table by a writer
that left out the event's envelope (its id, flow, time and version), so the relay cannot read
it. The local stage retries it 4 times (``chalicelib/functions.py``), which takes seconds.
On the SAM deployment: only the tests of the ``scenarios`` group use it, one at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from deploy import template
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import PROJECT, SCENARIOS, an_order
from tests.e2e.dead_letters import SAM_LOCAL
from tests.e2e.support import Tap, queue_url

pytestmark = [pytest.mark.e2e, SCENARIOS]


def redrive_relay(cloud: Any, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m tools.redrive --stage local --path sam --queue relay ...``, as an operator."""
    return subprocess.run(
        [sys.executable, "-m", "tools.redrive", "--stage", "local", "--path", "sam"]
        + ["--queue", "relay", *arguments],
        cwd=PROJECT,
        env=os.environ | cloud.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_record_the_relay_cannot_relay_is_dead_lettered_the_stream_moves_on_and_redrive_replays_it(  # noqa: E501
    sam_api: OrdersApi, sam_deployment: dict[str, Any], local_cloud: Any
) -> None:
    dynamodb, sqs = local_cloud.client("dynamodb"), local_cloud.client("sqs")
    dead_letters = queue_url(local_cloud, template.relay_dead_letter_queue_name(SAM_LOCAL))
    order_id = f"poison-{uuid.uuid4().hex[:12]}"
    event = {
        "event_id": f"{order_id}-restaurant_notified",
        "type": "restaurant_notified",
        "version": 1,
        "order_id": order_id,
        "flow": "choreography",  # no subscription takes a choreographed restaurant_notified
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": {"restaurant_id": "restaurant-1"},
    }
    without_envelope = {k: event[k] for k in ("type", "order_id", "data")}
    item = {"pk": {"S": order_id}, "sk": {"S": "EVENT#000001"}}
    # (what an earlier run of this test that stopped midway left there is not this run's)
    sqs.purge_queue(QueueUrl=dead_letters)
    events = Tap(local_cloud, sam_deployment["events_topic_arn"], f"e2e-relay-{order_id[-8:]}")
    try:
        # GIVEN an event item the relay cannot read, inserted into the orders table
        dynamodb.put_item(
            TableName=sam_deployment["orders_table"],
            Item=item | {"event": {"S": json.dumps(without_envelope)}},
        )
        # WHEN an order is placed after it
        later = sam_api.place(an_order("choreography"))
        # THEN the stream moves on: the later order goes ahead
        sam_api.wait_for(later, "RESTAURANT_NOTIFIED", timeout=60)
        # AND after its bounded retries the record is in the relay's dead-letter queue, as its
        # batch's position in the stream

        def dead_lettered() -> list[dict[str, Any]]:
            messages = sqs.receive_message(
                QueueUrl=dead_letters, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            return [json.loads(m["Body"])["DDBStreamBatchInfo"] for m in messages]

        (batch,) = eventually(dead_lettered, 60, "the poison's batch in the relay's DLQ", every=1)
        assert f":table/{sam_deployment['orders_table']}/stream/" in batch["streamArn"]
        # WHEN the operator redrives it while the item is still broken
        still_broken = redrive_relay(local_cloud)
        # THEN it is reported, named, and kept
        assert still_broken.returncode == 1, still_broken.stdout + still_broken.stderr
        assert f"pk={order_id} sk=EVENT#000001" in still_broken.stdout
        assert still_broken.stdout.splitlines()[-1].endswith(" not_replayed=1")
        assert events.about(order_id) == []
        # WHEN the operator corrects the item and redrives again
        dynamodb.put_item(
            TableName=sam_deployment["orders_table"],
            Item=item | {"event": {"S": json.dumps(event)}},
        )
        replayed = redrive_relay(local_cloud)
        # THEN the event is relayed, once, and the dead letter is gone
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout.splitlines()[-1] == "redriven=1 queues=1 waiting=1"
        published = eventually(lambda: events.about(order_id), 30, "the event published")
        assert [e["event_id"] for e in published] == [event["event_id"]]
        assert dead_lettered() == []
    finally:
        events.close()


def test_the_relays_stream_is_bounded_and_dead_letters_on_both_deploy_paths(
    local_cloud: Any, chalice_deployment: dict[str, Any], sam_deployment: dict[str, Any]
) -> None:
    lambda_client = local_cloud.client("lambda")
    for deployment in (chalice_deployment, sam_deployment):
        function = f"{deployment['prefix']}-{template.RELAY}"
        (mapping,) = lambda_client.list_event_source_mappings(FunctionName=function)[
            "EventSourceMappings"
        ]
        dead_letters = f"{deployment['prefix']}-relay-dlq"
        assert mapping["MaximumRetryAttempts"] == 4, function
        assert mapping["BisectBatchOnFunctionError"] is True, function
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function
        destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination.endswith(f":{dead_letters}"), function
