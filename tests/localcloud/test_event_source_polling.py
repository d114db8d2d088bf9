"""The local cloud's event source mapping tuning is in effect (localcloud/server.py defaults).

LocalStack's SQS poller sleeps 1 s after every poll that found messages and, without a batching
window, backs off up to 10 s on an empty queue. The local stages map choreography queues with
batch size 10 and a batching window, and the local cloud shortens the poller's sleeps, so
messages following each other through one hop are handed over one by one, promptly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.functions import QUEUE_BATCH, RELAY_LANES
from deploy.stages import load_stage
from localcloud.server import external_endpoint
from localcloud.testing import LocalCloud
from tests.localcloud.cloud_helpers import (
    DeployedFunction,
    queue_arn,
    receive_json,
    wait_until_mapping_enabled,
)

pytestmark = pytest.mark.localcloud
# What the local stage deploys: the choreography's batch size and the local batching window.
LOCAL_WINDOW = load_stage("local").sqs_batching_window_seconds

Deploy = Callable[..., DeployedFunction]

MESSAGES = 10
# A functional limit, not a benchmark: tuned, ten hops take well under a second; with
# LocalStack's 1 s poll interval they take about 10 s, and if a message waited for the batch to
# fill it would take 20 s for one.
TIME_LIMIT_SECONDS = 5.0


def bodies_received(sqs: Any, url: str, wanted: str, deadline: float) -> set[str]:
    """Receives the recorder's events from `url` until one carries `wanted` or `deadline`."""
    bodies: set[str] = set()
    while wanted not in bodies and time.monotonic() < deadline:
        wait = max(0, min(1, round(deadline - time.monotonic())))
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for message in response.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            bodies |= {record["body"] for record in json.loads(message["Body"])["Records"]}
    return bodies


def test_messages_in_a_row_pass_a_windowed_sqs_mapping_one_by_one_without_waiting(
    local_cloud: LocalCloud,
    deploy_function: Deploy,
    lambda_client: Any,
    sqs: Any,
    make_queue: Callable[..., str],
) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's tuning is not ours")
    sns = local_cloud.client("sns")
    # GIVEN a topic delivering raw messages to a queue, mapped to a function as the local stage
    # maps a choreography queue (batch size 10, the local stage's batching window)
    results = make_queue("lc-results")
    source = make_queue("lc-source")
    function = deploy_function("recorder", environment={"RESULT_QUEUE_URL": results})
    topic = sns.create_topic(Name=f"{function.name}-topic")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn(sqs, source),
        Attributes={"RawMessageDelivery": "true"},
    )
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn(sqs, source),
        FunctionName=function.name,
        BatchSize=QUEUE_BATCH,
        MaximumBatchingWindowInSeconds=LOCAL_WINDOW,
    )
    try:
        wait_until_mapping_enabled(lambda_client, mapping["UUID"])
        # AND the function has started once (a cold start is not what this test is about)
        sns.publish(TopicArn=topic, Message="warm-up")
        assert "warm-up" in bodies_received(sqs, results, "warm-up", time.monotonic() + 60)

        # WHEN messages are published one after another, each once the previous one came out
        began = time.monotonic()
        deadline = began + TIME_LIMIT_SECONDS
        came_through: list[str] = []
        for number in range(MESSAGES):
            body = f"message-{number}"
            sns.publish(TopicArn=topic, Message=body)
            if body not in bodies_received(sqs, results, body, deadline):
                break
            came_through.append(body)
        elapsed = time.monotonic() - began

        # THEN each reached the function alone and at once: all of them within the time limit
        assert len(came_through) == MESSAGES, (
            f"{len(came_through)} of {MESSAGES} messages came through a windowed mapping within "
            f"{TIME_LIMIT_SECONDS:g} s ({elapsed:.1f} s elapsed): is the local cloud running "
            "with localcloud/server.py's event source mapping settings? Restart it "
            "(`bash localcloud/run stop && bash localcloud/run start`) if it was started before."
        )
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
        sns.delete_topic(TopicArn=topic)


def rendezvous(
    deploy: Deploy, results: str, place: Any, names: tuple[str, str]
) -> DeployedFunction:
    """A function that, for each record, waits (at most 8 s) until both names have started."""
    environment = {"RESULT_QUEUE_URL": results, "RENDEZVOUS_DIR": str(place)}
    return deploy(
        "rendezvous", environment=environment | {"EXPECTED": ",".join(names), "WAIT_SECONDS": "8"}
    )


def met(reports: list[Any], names: tuple[str, str]) -> bool:
    """Each name's invocation saw the other's start while it ran."""
    return sorted(report["body"] for report in reports) == sorted(names) and all(
        report["started"] == sorted(names) for report in reports
    )


def test_a_standard_queues_batches_are_handled_side_by_side_as_lambda_polls_them(
    local_cloud: LocalCloud,
    deploy_function: Deploy,
    lambda_client: Any,
    sqs: Any,
    make_queue: Callable[..., str],
    tmp_path: Any,
) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's tuning is not ours")
    # GIVEN a function that, for each message, waits until the other message's invocation has
    # started too (at most 8 s), mapped one message a batch to a standard queue
    results = make_queue("lc-results")
    source = make_queue("lc-source")
    function = rendezvous(deploy_function, results, tmp_path, ("first", "second"))
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn(sqs, source),
        FunctionName=function.name,
        BatchSize=1,
        MaximumBatchingWindowInSeconds=LOCAL_WINDOW,
    )
    try:
        wait_until_mapping_enabled(lambda_client, mapping["UUID"])
        # WHEN two messages wait in the queue
        sqs.send_message_batch(
            QueueUrl=source,
            Entries=[{"Id": body, "MessageBody": body} for body in ("first", "second")],
        )
        reports = receive_json(sqs, results, lambda got: len(got) == 2)
        # THEN each batch's invocation saw the other's start while it ran: two batches in flight
        # (LocalStack's poller waits for one invocation before it receives the next batch, so
        # the first gave up waiting with only itself started)
        assert met(reports, ("first", "second")), reports
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_table_streams_parallelization_factor_hands_two_orders_to_the_function_side_by_side(
    local_cloud: LocalCloud,
    deploy_function: Deploy,
    lambda_client: Any,
    sqs: Any,
    make_queue: Callable[..., str],
    tmp_path: Any,
) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's tuning is not ours")
    dynamodb = local_cloud.client("dynamodb")
    # GIVEN a function that, for each record, waits until the other key's record has started too
    # (at most 8 s), mapped to a table's stream with a parallelization factor, as the relay is
    results = make_queue("lc-results")
    function = rendezvous(deploy_function, results, tmp_path, ("order-a", "order-b"))
    table = dynamodb.create_table(
        TableName=function.name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"],
        FunctionName=function.name,
        BatchSize=100,
        StartingPosition="TRIM_HORIZON",
        ParallelizationFactor=RELAY_LANES,
    )
    try:
        wait_until_mapping_enabled(lambda_client, mapping["UUID"])
        # WHEN two items of different partition keys are written together (one batch; the keys
        # fall in different lanes: stream_lanes.lanes_of, CRC-32 of the keys modulo the factor)
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": function.name,
                        "Item": {"pk": {"S": key}, "mark": {"S": key}},
                    }
                }
                for key in ("order-a", "order-b")
            ]
        )
        reports = receive_json(sqs, results, lambda got: len(got) == 2)
        # THEN each key's record was handed over while the other's ran: two batches of the shard
        # in flight (LocalStack ignores the factor: one invocation got both records, the first
        # gave up waiting with only itself started)
        assert met(reports, ("order-a", "order-b")), reports
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
        dynamodb.delete_table(TableName=function.name)
