"""Functions invoked by LocalStack itself: an SQS event source mapping and an SNS subscription."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.testing import LocalCloud, wait_for
from tests.localcloud.cloud_helpers import (
    DeployedFunction,
    queue_arn,
    receive_json,
    wait_until_mapping_enabled,
)

pytestmark = pytest.mark.localcloud

Deploy = Callable[..., DeployedFunction]


def test_sqs_mapping_delivers_batches_and_honours_reported_item_failures(
    deploy_function: Deploy, lambda_client: Any, sqs: Any, make_queue: Callable[..., str]
) -> None:
    # GIVEN a queue whose failed messages go to a dead-letter queue after one receive
    results = make_queue("lc-results")
    dead_letters = make_queue("lc-dlq")
    source = make_queue(
        "lc-source",
        VisibilityTimeout="1",
        RedrivePolicy=json.dumps(
            {"deadLetterTargetArn": queue_arn(sqs, dead_letters), "maxReceiveCount": "1"}
        ),
    )
    # AND a function mapped to it that reports bodies starting with "fail" as failed items
    function = deploy_function("batch", environment={"RESULT_QUEUE_URL": results})
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn(sqs, source),
        FunctionName=function.name,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    try:
        wait_until_mapping_enabled(lambda_client, mapping["UUID"])

        # WHEN one good and one bad message arrive
        sqs.send_message(QueueUrl=source, MessageBody="ok-1")
        sqs.send_message(QueueUrl=source, MessageBody="fail-1")

        # THEN the function receives both
        processed = receive_json(
            sqs, results, until=lambda got: {"ok-1", "fail-1"} <= {m["body"] for m in got}
        )
        assert {m["body"] for m in processed} >= {"ok-1", "fail-1"}
        # AND only the reported failure stays on the queue, ending in the dead-letter queue
        dead = wait_for(
            lambda: sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=1).get("Messages"),
            timeout=60,
            interval=0,
            message="failed item in the dead-letter queue",
        )
        assert [message["Body"] for message in dead] == ["fail-1"]
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_sns_subscription_invokes_the_function(
    local_cloud: LocalCloud,
    deploy_function: Deploy,
    lambda_client: Any,
    sqs: Any,
    make_queue: Callable[..., str],
) -> None:
    sns = local_cloud.client("sns")
    results = make_queue("lc-results")
    function = deploy_function("recorder", environment={"RESULT_QUEUE_URL": results})
    topic = sns.create_topic(Name=f"{function.name}-topic")["TopicArn"]
    try:
        lambda_client.add_permission(
            FunctionName=function.name,
            StatementId="sns",
            Action="lambda:InvokeFunction",
            Principal="sns.amazonaws.com",
            SourceArn=topic,
        )
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function.arn)

        sns.publish(
            TopicArn=topic,
            Message=json.dumps({"order_id": "o-1"}),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "OrderPlaced"}},
        )

        events = receive_json(sqs, results, until=lambda got: len(got) >= 1)
        record = events[0]["Records"][0]
        assert record["EventSource"] == "aws:sns"
        assert record["Sns"]["TopicArn"] == topic
        assert json.loads(record["Sns"]["Message"]) == {"order_id": "o-1"}
        assert record["Sns"]["MessageAttributes"]["kind"]["Value"] == "OrderPlaced"
    finally:
        sns.delete_topic(TopicArn=topic)
