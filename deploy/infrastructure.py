"""The resources Chalice does not manage, created or updated with boto3 (``deploy up``).

Every function here is idempotent: run twice, it updates instead of failing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription
from deploy.settings import Stage

SFN_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


# boto3 service names that are not valid Python attribute names.
SERVICE_ALIASES = {"awslambda": "lambda"}


class Clients:
    """boto3 clients by attribute (``aws.sqs``), made once each."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._cache: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._cache:
            self._cache[service] = self.session.client(SERVICE_ALIASES.get(service, service))
        return self._cache[service]


def arn(aws: Clients, service: str, resource: str) -> str:
    """An ARN in this account, region and partition (aws, aws-cn, aws-us-gov)."""
    caller = aws.sts.get_caller_identity()
    partition = caller["Arn"].split(":")[1]
    return f"arn:{partition}:{service}:{aws.session.region_name}:{caller['Account']}:{resource}"


def ensure_tables(aws: Clients, stage: Stage) -> None:
    _ensure_table(aws, stage.orders_table, [("pk", "HASH"), ("sk", "RANGE")])
    _ensure_table(aws, stage.vouchers_table, [("voucher_id", "HASH")])


def _ensure_table(aws: Clients, name: str, keys: list[tuple[str, str]]) -> None:
    try:
        aws.dynamodb.describe_table(TableName=name)
    except aws.dynamodb.exceptions.ResourceNotFoundException:
        aws.dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
        )
    aws.dynamodb.get_waiter("table_exists").wait(TableName=name)


def ensure_topics(aws: Clients, stage: Stage) -> dict[str, str]:
    return {
        name: aws.sns.create_topic(Name=name)["TopicArn"]
        for name in (stage.events_topic, stage.notifications_topic)
    }


def ensure_service_queues(aws: Clients, stage: Stage, events_topic_arn: str) -> None:
    for subscription in SUBSCRIPTIONS:
        ensure_subscribed_queue(aws, stage, subscription, events_topic_arn)


def ensure_subscribed_queue(
    aws: Clients, stage: Stage, subscription: Subscription, topic_arn: str
) -> str:
    """A queue with its dead-letter queue, subscribed to the topic with its filter policy."""
    queue = subscription.queue_for(stage.resource_prefix)
    dlq_arn = _queue_arn(aws, aws.sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"])
    attributes = {
        "VisibilityTimeout": str(stage.queue_visibility_timeout_seconds),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": stage.max_receive_count}
        ),
        "DelaySeconds": str(
            stage.restaurant_deadline_seconds if subscription.delayed_until_deadline else 0
        ),
    }
    url = aws.sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = _queue_arn(aws, url)
    attributes["Policy"] = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
    )
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    _ensure_subscription(aws, topic_arn, queue_arn, subscription.filter_policy())
    return url


def _queue_arn(aws: Clients, url: str) -> str:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _ensure_subscription(
    aws: Clients, topic_arn: str, queue_arn: str, filter_policy: dict[str, list[str]]
) -> None:
    existing = [
        sub["SubscriptionArn"]
        for page in aws.sns.get_paginator("list_subscriptions_by_topic").paginate(
            TopicArn=topic_arn
        )
        for sub in page["Subscriptions"]
        if sub["Endpoint"] == queue_arn
    ]
    attributes = {
        "RawMessageDelivery": "true",
        "FilterPolicyScope": "MessageAttributes",
        "FilterPolicy": json.dumps(filter_policy),
    }
    if not existing:
        aws.sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        return
    for name, value in attributes.items():
        aws.sns.set_subscription_attributes(
            SubscriptionArn=existing[0], AttributeName=name, AttributeValue=value
        )


def ensure_state_machine(
    aws: Clients, stage: Stage, definition: str, function_arns: list[str]
) -> str:
    role_arn = _ensure_state_machine_role(aws, stage, function_arns)
    name = stage.state_machine
    arn = _state_machine_arn(aws, name)
    tracing = {"enabled": True}
    if arn is None:
        for attempt in range(10):
            try:
                return str(
                    aws.stepfunctions.create_state_machine(
                        name=name,
                        definition=definition,
                        roleArn=role_arn,
                        type="STANDARD",
                        tracingConfiguration=tracing,
                    )["stateMachineArn"]
                )
            except ClientError as error:
                # A new IAM role takes a few seconds to become usable in AWS.
                if error.response["Error"]["Code"] != "AccessDeniedException" or attempt == 9:
                    raise
                time.sleep(3)
    aws.stepfunctions.update_state_machine(
        stateMachineArn=arn, definition=definition, roleArn=role_arn, tracingConfiguration=tracing
    )
    return arn


def _state_machine_arn(aws: Clients, name: str) -> str | None:
    for page in aws.stepfunctions.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    return None


def _ensure_state_machine_role(aws: Clients, stage: Stage, function_arns: list[str]) -> str:
    name = stage.state_machine_role
    try:
        role_arn = aws.iam.get_role(RoleName=name)["Role"]["Arn"]
    except aws.iam.exceptions.NoSuchEntityException:
        role_arn = aws.iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(SFN_TRUST)
        )["Role"]["Arn"]
    aws.iam.put_role_policy(
        RoleName=name,
        PolicyName="invoke-order-flow-tasks",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "lambda:InvokeFunction",
                        "Resource": function_arns,
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "xray:PutTraceSegments",
                            "xray:PutTelemetryRecords",
                            "xray:GetSamplingRules",
                            "xray:GetSamplingTargets",
                        ],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    return str(role_arn)


def report_batch_item_failures(aws: Clients, function_arns: list[str]) -> int:
    """Turn on partial batch responses for every SQS mapping of these functions.

    The mapping is disabled while its response type changes, then enabled again:
    LocalStack replaces the poller on every update (``chalice deploy`` updates
    mappings too), and a poller replaced while running can record the mapping as
    Disabled although its successor polls. A mapping left so is repaired here.
    """
    changing = []
    for function_arn in function_arns:
        pages = aws.awslambda.get_paginator("list_event_source_mappings").paginate(
            FunctionName=function_arn
        )
        for mapping in (m for page in pages for m in page["EventSourceMappings"]):
            if mapping["EventSourceArn"].split(":")[2] != "sqs":
                continue
            reports = mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
            if reports and mapping["State"] == "Enabled":
                continue
            changing.append(mapping["UUID"])
    for uuid in changing:
        _wait_mapping(aws, uuid, {"Enabled", "Disabled"})
        aws.awslambda.update_event_source_mapping(
            UUID=uuid, FunctionResponseTypes=["ReportBatchItemFailures"], Enabled=False
        )
    for uuid in changing:
        _wait_mapping(aws, uuid, {"Disabled"})
        _enable_mapping(aws, uuid)
    return len(changing)


def _enable_mapping(aws: Clients, uuid: str, attempts: int = 3) -> None:
    for _ in range(attempts):
        aws.awslambda.update_event_source_mapping(UUID=uuid, Enabled=True)
        _wait_mapping(aws, uuid, {"Enabled"})
        time.sleep(2)  # a replaced poller records its stop shortly after it is told
        if aws.awslambda.get_event_source_mapping(UUID=uuid)["State"] == "Enabled":
            return
        _wait_mapping(aws, uuid, {"Disabled"})
    raise SystemExit(f"event source mapping {uuid} does not stay enabled")


def _wait_mapping(aws: Clients, uuid: str, states: set[str], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    state = "unknown"
    while time.monotonic() < deadline:
        state = aws.awslambda.get_event_source_mapping(UUID=uuid)["State"]
        if state in states:
            return
        time.sleep(0.5)
    raise SystemExit(f"event source mapping {uuid} is {state}, not one of {sorted(states)}")


def teardown(aws: Clients, stage: Stage) -> None:
    """Remove everything ``ensure_*`` created; missing pieces are skipped."""
    arn = _state_machine_arn(aws, stage.state_machine)
    if arn is not None:
        aws.stepfunctions.delete_state_machine(stateMachineArn=arn)
    _ignore_missing(
        lambda: aws.iam.delete_role_policy(
            RoleName=stage.state_machine_role, PolicyName="invoke-order-flow-tasks"
        )
    )
    _ignore_missing(lambda: aws.iam.delete_role(RoleName=stage.state_machine_role))
    for topic in (stage.events_topic, stage.notifications_topic):
        # CreateTopic is idempotent and the simplest way to learn a topic's ARN.
        topic_arn = aws.sns.create_topic(Name=topic)["TopicArn"]
        aws.sns.delete_topic(TopicArn=topic_arn)  # also removes its subscriptions
    for subscription in SUBSCRIPTIONS:
        queue = subscription.queue_for(stage.resource_prefix)
        for name in (queue, f"{queue}-dlq"):
            _ignore_missing(
                lambda name=name: aws.sqs.delete_queue(
                    QueueUrl=aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                )
            )
    for table in (stage.orders_table, stage.vouchers_table):
        _ignore_missing(lambda table=table: aws.dynamodb.delete_table(TableName=table))


def _ignore_missing(action: Any) -> None:
    try:
        action()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if not any(word in code for word in ("NotFound", "NoSuchEntity", "NonExistent")):
            raise
