"""The one declaration of everything Chalice does not manage, as a CloudFormation template.

Both deploy paths render their infrastructure from ``render(deployment)``:
- the ``chalice`` path deploys it as a stack of its own and hands the stack's
  outputs (resource names, one IAM role per function) to ``chalice deploy``;
- the ``sam`` path merges it into ``chalice package`` output (``--merge-template``),
  adding ``function_overrides`` so each Chalice function uses the same role,
  environment, queue and name as in the other path.

To add a resource: declare it in ``_resources`` (and, if functions use it, an
environment variable in ``function_environment`` whose name lives in
``chalicelib/settings.py``, and a grant in ``GRANTS``). Nothing else names it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from chalicelib import functions, settings
from chalicelib.adapters import dynamodb_orders
from chalicelib.adapters.durable_functions import execution_timeout_seconds
from chalicelib.application import APP_NAME
from chalicelib.functions import API_HANDLER, Every, OrdersStream, SqsQueue, StateMachineTask
from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription
from deploy import api_throttling
from deploy.stages import ASL, Deployment, DeployPath, development_issuer_trusted
from localdev import dev_issuer, durable_runner, faults

Json = dict[str, Any]
# The functions' names, by what invokes them (chalicelib/functions.py declares them).
FUNCTIONS = [function.name for function in functions.FUNCTIONS]
TASK_FUNCTIONS = [f.name for f in functions.FUNCTIONS if isinstance(f.trigger, StateMachineTask)]
# Chalice function name -> the subscription whose queue it consumes.
QUEUE_HANDLERS = {
    f.name: f.trigger.subscription for f in functions.FUNCTIONS if isinstance(f.trigger, SqsQueue)
}
# The outbox relay, on the orders table's stream.
(RELAY,) = [f.name for f in functions.FUNCTIONS if isinstance(f.trigger, OrdersStream)]
# Every minute, resumes or ends the orders waiting past their deadline.
(SWEEPER,) = [f.name for f in functions.FUNCTIONS if isinstance(f.trigger, Every)]
IAM_ROLE_NAME_LIMIT = 64
# A new stage sends every order that names no flow to choreography; tools.flow_weights changes it.
INITIAL_FLOW_WEIGHTS = {"choreography": 100, "orchestration": 0, "durable": 0}


def logical_id(chalice_name: str) -> str:
    """Chalice's logical id: ``notify_restaurant_task`` -> ``NotifyRestaurantTask``."""
    if chalice_name == API_HANDLER:
        return "APIHandler"
    return "".join(part.capitalize() for part in re.split(r"[_-]", chalice_name))


def role_id(chalice_name: str) -> str:
    return f"{logical_id(chalice_name)}Role"


def queue_id(subscription: Subscription) -> str:
    return logical_id(subscription.service) + "Queue"


def sub_arn(service: str, resource: str) -> Json:
    prefix = "arn:${AWS::Partition}:" + service + ":${AWS::Region}:${AWS::AccountId}"
    return {"Fn::Sub": f"{prefix}:{resource}"}


def state_machine_name(deployment: Deployment) -> str:
    return f"{deployment.prefix}-flow"


def state_machine_arn(deployment: Deployment) -> Json:
    # Built, not referenced: the tasks the state machine names cannot depend on it.
    return sub_arn("states", f"stateMachine:{state_machine_name(deployment)}")


def function_arn(deployment: Deployment, chalice_name: str) -> Json:
    return sub_arn("lambda", f"function:{deployment.function_name(chalice_name)}")


# --- the durable style: one durable function, declared on the SAM path for AWS stages ----------

DURABLE_FUNCTION = "order_flow_durable"
DURABLE_FUNCTION_ID = "OrderFlowDurable"
DURABLE_ALIAS = "live"  # durable executions run a published version: invoked by its alias
DURABLE_HANDLER = "chalicelib.entrypoints.durable.order_flow"
# An execution outlives both waits with room for the retries between them; its history is
# kept as long as the state machine's executions' logs are.
DURABLE_RETENTION_DAYS = 30
DURABLE_INVOCATION_TIMEOUT_SECONDS = 60


def declares_durable_function(deployment: Deployment) -> bool:
    """Only the SAM path can declare a durable function (Chalice has no DurableConfig). On a
    local stage it is an ordinary function that AWS's local runner drives (docs/durable.md)."""
    return deployment.path is DeployPath.SAM


def durable_runner_endpoint(deployment: Deployment) -> str | None:
    """A local stage's durable execution API: the local runner beside its local cloud (the
    deploy starts it); None on an AWS stage, whose Lambda has the API."""
    if not deployment.stage.is_local:
        return None
    return durable_runner.runner_endpoint(os.environ.get("AWS_ENDPOINT_URL"))


def durable_function_name(deployment: Deployment) -> str:
    return deployment.function_name(DURABLE_FUNCTION)


def durable_function_arn(deployment: Deployment, qualifier: str = "") -> Json:
    return sub_arn("lambda", f"function:{durable_function_name(deployment)}{qualifier}")


def durable_execution_timeout_seconds(deployment: Deployment) -> int:
    stage = deployment.stage
    return execution_timeout_seconds(
        stage.restaurant_deadline_seconds, stage.delivery_deadline_seconds
    )


def qualified_durable_function(deployment: Deployment) -> str:
    """What the API, relay and sweeper name: the alias in AWS; locally the function itself
    (the local runner keeps no versions)."""
    if deployment.stage.is_local:
        return durable_function_name(deployment)
    return f"{durable_function_name(deployment)}:{DURABLE_ALIAS}"


def _durable_function(deployment: Deployment) -> Json:
    """The durable function: the package Chalice builds, the SDK's handler, its own role."""
    properties: Json = {
        "FunctionName": durable_function_name(deployment),
        "CodeUri": "./deployment.zip",
        "Handler": DURABLE_HANDLER,
        # The SDK needs Python 3.13 or later; the package is built for this Python.
        "Runtime": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "MemorySize": functions.MEMORY_MB,
        "Timeout": DURABLE_INVOCATION_TIMEOUT_SECONDS,
        "Tracing": "Active",
        "Role": {"Fn::GetAtt": [role_id(DURABLE_FUNCTION), "Arn"]},
        "Environment": {"Variables": function_environment(deployment)},
    }
    if not deployment.stage.is_local:
        # Locally an ordinary function: the local cloud has no durable functions (the local
        # runner's start route carries the execution timeout instead).
        properties["AutoPublishAlias"] = DURABLE_ALIAS
        properties["DurableConfig"] = {
            "ExecutionTimeout": durable_execution_timeout_seconds(deployment),
            "RetentionPeriodInDays": DURABLE_RETENTION_DAYS,
        }
    return {
        DURABLE_FUNCTION_ID: {"Type": "AWS::Serverless::Function", "Properties": properties},
        role_id(DURABLE_FUNCTION): _function_role(deployment, DURABLE_FUNCTION),
    }


def function_environment(deployment: Deployment) -> Json:
    """Every variable that hands a resource or setting to the functions, and its value."""
    stage = deployment.stage
    environment: Json = {
        settings.RESOURCE_PREFIX: deployment.prefix,
        settings.ORDERS_TABLE: {"Ref": "OrdersTable"},
        settings.ORDERS_STREAM: {"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
        settings.VOUCHERS_TABLE: {"Ref": "VouchersTable"},
        settings.ORDER_EVENTS_TOPIC: {"Ref": "OrderEventsTopic"},
        settings.NOTIFICATIONS_TOPIC: {"Ref": "NotificationsTopic"},
        settings.ORDER_FLOW_STATE_MACHINE: state_machine_arn(deployment),
        settings.RESTAURANT_DEADLINE: str(stage.restaurant_deadline_seconds),
        settings.DELIVERY_DEADLINE: str(stage.delivery_deadline_seconds),
        settings.ADMISSION_IN_FLIGHT: str(stage.admission.orders_in_flight),
        settings.ADMISSION_RETRY_AFTER: str(stage.admission.retry_after_seconds),
        settings.FLOW_WEIGHTS_PARAMETER: {"Ref": "FlowWeightsParameter"},
        settings.AUTH_ISSUER: stage.auth.issuer,
        settings.AUTH_AUDIENCE: stage.auth.audience,
        settings.AUTH_ROLE_CLAIM: stage.auth.role_claim,
        "POWERTOOLS_SERVICE_NAME": APP_NAME,
        settings.TRACER: stage.tracing.tracer,
    }
    if stage.tracing.otlp_traces_endpoint is not None:
        environment[settings.OTLP_TRACES_ENDPOINT] = stage.tracing.otlp_traces_endpoint
    if development_issuer_trusted(stage):
        environment[settings.AUTH_JWKS_PARAMETER] = {"Ref": "AuthKeysParameter"}
    else:
        environment[settings.AUTH_JWKS_URL] = stage.auth.jwks_url
    if declares_durable_function(deployment):
        # A name, not a reference: the durable function reads this environment too.
        environment[settings.ORDER_FLOW_DURABLE_FUNCTION] = qualified_durable_function(deployment)
    runner = durable_runner_endpoint(deployment) if declares_durable_function(deployment) else None
    if runner is not None:
        # Every Lambda call of these functions is a durable execution API call: the runner's.
        environment[settings.ORDER_FLOW_DURABLE_RUNNER] = runner
        environment["AWS_ENDPOINT_URL_LAMBDA"] = runner
    if stage.sqs_batching_window_seconds is not None:
        environment[settings.SQS_BATCHING_WINDOW] = str(stage.sqs_batching_window_seconds)
    if has_fault_switch(deployment):
        environment[faults.FAULTS_PARAMETER] = {"Ref": "FaultsParameter"}
    return environment


# --- least privilege: what each function calls, on what -----------------------------------

Statement = Json
# A grant may not apply to a stage (None): then the role leaves it out.
Grant = Callable[[Deployment, str], Statement | None]


def _allow(actions: list[str], resources: Any) -> Statement:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def write_orders(deployment: Deployment, function: str) -> Statement:
    # TransactWriteItems is authorised per item, by these actions.
    actions = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    return _allow([*actions, "dynamodb:ConditionCheckItem"], {"Fn::GetAtt": ["OrdersTable", "Arn"]})


def list_orders(deployment: Deployment, function: str) -> Statement:
    # A party's orders, through the table's indexes (GET /orders).
    indexes = [
        {"Fn::Sub": f"${{OrdersTable.Arn}}/index/{name}"}
        for name in dynamodb_orders.PARTY_INDEX.values()
    ]
    return _allow(["dynamodb:Query"], indexes)


def find_waiting_orders(deployment: Deployment, function: str) -> Statement:
    # The orders waiting past their deadline, through the table's sparse index (the sweeper).
    index = {"Fn::Sub": f"${{OrdersTable.Arn}}/index/{dynamodb_orders.WAITING_INDEX}"}
    return _allow(["dynamodb:Query"], index)


def check_flow_running(deployment: Deployment, function: str) -> Statement:
    # Whether an order's execution (named after the order) still runs and owns its deadlines.
    execution = f"execution:{state_machine_name(deployment)}:*"
    return _allow(["states:DescribeExecution"], sub_arn("states", execution))


def read_flow_history(deployment: Deployment, function: str) -> Statement:
    # The executions are named after the orders; their history is the orchestrated timeline.
    execution = f"execution:{state_machine_name(deployment)}:*"
    return _allow(["states:GetExecutionHistory"], sub_arn("states", execution))


def read_orders(deployment: Deployment, function: str) -> Statement:
    # Promotions checks an event against the stored order and reads its total (a Query).
    return _allow(["dynamodb:Query"], {"Fn::GetAtt": ["OrdersTable", "Arn"]})


def write_vouchers(deployment: Deployment, function: str) -> Statement:
    return _allow(["dynamodb:PutItem"], {"Fn::GetAtt": ["VouchersTable", "Arn"]})


def publish_events(deployment: Deployment, function: str) -> Statement:
    return _allow(["sns:Publish"], {"Ref": "OrderEventsTopic"})


def notify_people(deployment: Deployment, function: str) -> Statement:
    return _allow(["sns:Publish"], {"Ref": "NotificationsTopic"})


def read_flow_weights(deployment: Deployment, function: str) -> Statement:
    parameter = f"parameter{flow_weights_parameter_name(deployment)}"
    return _allow(["ssm:GetParameter"], sub_arn("ssm", parameter))


def read_fault_switch(deployment: Deployment, function: str) -> Statement:
    # Every function that writes orders or tells people reads the switch (localdev/faults/).
    parameter = f"parameter{faults_parameter_name(deployment)}"
    return _allow(["ssm:GetParameter"], sub_arn("ssm", parameter))


def read_auth_keys(deployment: Deployment, function: str) -> Statement | None:
    # Local stages keep the development issuer's public keys in SSM; AWS stages fetch a JWKS URL.
    if not development_issuer_trusted(deployment.stage):
        return None
    parameter = f"parameter{auth_keys_parameter_name(deployment)}"
    return _allow(["ssm:GetParameter"], sub_arn("ssm", parameter))


def read_orders_stream(deployment: Deployment, function: str) -> Statement:
    actions = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    return _allow([*actions, "dynamodb:ListStreams"], {"Fn::GetAtt": ["OrdersTable", "StreamArn"]})


def send_relay_failures(deployment: Deployment, function: str) -> Statement:
    # The stream's on-failure destination: Lambda sends it as the relay's own role.
    return _allow(["sqs:SendMessage"], {"Fn::GetAtt": [RELAY_DEAD_LETTERS, "Arn"]})


def start_flow(deployment: Deployment, function: str) -> Statement:
    return _allow(["states:StartExecution"], state_machine_arn(deployment))


def answer_flow(deployment: Deployment, function: str) -> Statement:
    # SendTaskSuccess is authorised by the task token: it has no resource-level permissions.
    return _allow(["states:SendTaskSuccess"], "*")


def start_durable_flow(deployment: Deployment, function: str) -> Statement | None:
    if not declares_durable_function(deployment):
        return None
    return _allow(["lambda:InvokeFunction"], durable_function_arn(deployment, f":{DURABLE_ALIAS}"))


def answer_durable_flow(deployment: Deployment, function: str) -> Statement | None:
    # The API completes a wait's callback and reads an execution's history for its timeline.
    if not declares_durable_function(deployment):
        return None
    actions = [
        "lambda:SendDurableExecutionCallbackSuccess",
        "lambda:ListDurableExecutionsByFunction",
        "lambda:GetDurableExecutionHistory",
    ]
    return _allow(actions, _durable_function_and_versions(deployment))


def check_durable_flow_running(deployment: Deployment, function: str) -> Statement | None:
    if not declares_durable_function(deployment):
        return None
    actions = ["lambda:ListDurableExecutionsByFunction"]
    return _allow(actions, _durable_function_and_versions(deployment))


def checkpoint_own_executions(deployment: Deployment, function: str) -> Statement:
    # What the SDK calls from inside the durable function, on its own executions only.
    actions = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    return _allow(actions, _durable_function_and_versions(deployment))


def _durable_function_and_versions(deployment: Deployment) -> list[Json]:
    return [durable_function_arn(deployment), durable_function_arn(deployment, ":*")]


def consume_own_queue(deployment: Deployment, function: str) -> Statement:
    queue = queue_id(QUEUE_HANDLERS[function])
    actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    return _allow([*actions, "sqs:ChangeMessageVisibility"], {"Fn::GetAtt": [queue, "Arn"]})


def send_back_to_own_queue(deployment: Deployment, function: str) -> Statement:
    # A message that came before its deadline goes back to the queue, delayed until then.
    queue = queue_id(QUEUE_HANDLERS[function])
    return _allow(["sqs:SendMessage", "sqs:GetQueueUrl"], {"Fn::GetAtt": [queue, "Arn"]})


def write_own_logs(deployment: Deployment, function: str) -> Statement:
    group = f"log-group:/aws/lambda/{deployment.function_name(function)}"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    return _allow(actions, [sub_arn("logs", group), sub_arn("logs", f"{group}:*")])


def send_traces(deployment: Deployment, function: str) -> Statement:
    # X-Ray has no resource-level permissions for sending segments.
    return _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")


# The services that use the data key on a function's behalf, by the grant that makes it call
# them: SNS encrypts what is published (kms:GenerateDataKey, kms:Decrypt), SQS decrypts what is
# received (kms:Decrypt) and encrypts what is sent, DynamoDB decrypts and makes the table's keys
# for reads and writes.
KEY_USING_SERVICES: dict[Grant, str] = {
    write_orders: "dynamodb",
    find_waiting_orders: "dynamodb",
    read_orders: "dynamodb",
    write_vouchers: "dynamodb",
    read_orders_stream: "dynamodb",
    publish_events: "sns",
    notify_people: "sns",
    consume_own_queue: "sqs",
    send_relay_failures: "sqs",
    send_back_to_own_queue: "sqs",
}


def use_data_key(deployment: Deployment, function: str) -> Statement:
    """The data key, only through the services this function's other grants let it call."""
    services = sorted({KEY_USING_SERVICES[g] for g in GRANTS[function] if g in KEY_USING_SERVICES})
    if not services:  # every function keeps order data today; one that keeps none needs no key
        raise SystemExit(f"{function} calls no service that encrypts with the data key")
    actions = ["kms:Decrypt"] if services == ["sqs"] else ["kms:GenerateDataKey", "kms:Decrypt"]
    statement = _allow(actions, data_key_arn())
    via = [{"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"} for service in services]
    statement["Condition"] = {"StringEquals": {"kms:ViaService": via}}
    return statement


EVERY_FUNCTION: list[Grant] = [write_own_logs, send_traces, use_data_key]
GRANTS: dict[str, list[Grant]] = {
    # Nobody publishes, tells or starts the workflow after a write but the relay (the outbox).
    API_HANDLER: [
        write_orders,
        answer_flow,
        read_flow_weights,
        read_auth_keys,
        list_orders,
        read_flow_history,
        answer_durable_flow,
    ],
    "notify_restaurant_task": [write_orders],
    "accept_order_task": [write_orders],
    "reject_order_task": [write_orders],
    "notify_user_task": [write_orders],
    "complete_order_task": [write_orders],
    "cancel_order_task": [write_orders],
    "expire_delivery_task": [write_orders],
    "restaurant_notifier": [write_orders, consume_own_queue],
    "restaurant_deadline_checker": [write_orders, consume_own_queue, send_back_to_own_queue],
    "user_notifier": [write_orders, consume_own_queue],
    "promotions": [read_orders, write_vouchers, consume_own_queue],
    RELAY: [
        read_orders_stream,
        publish_events,
        notify_people,
        start_flow,
        start_durable_flow,
        send_relay_failures,
    ],
    SWEEPER: [write_orders, find_waiting_orders, check_flow_running, check_durable_flow_running],
    DURABLE_FUNCTION: [write_orders, checkpoint_own_executions],
}


def _function_role(deployment: Deployment, function: str) -> Json:
    # "-role": Chalice's own managed roles are named <app>-<stage>-<function>.
    name = f"{deployment.prefix}-{function}-role"
    if len(name) > IAM_ROLE_NAME_LIMIT:
        raise SystemExit(f"role name {name!r} is over {IAM_ROLE_NAME_LIMIT} characters")
    grants = [*GRANTS[function], *EVERY_FUNCTION]
    if has_fault_switch(deployment) and {write_orders, notify_people} & set(grants):
        grants.append(read_fault_switch)  # its writes or tellings obey the switch
    granted = [grant(deployment, function) for grant in grants]
    statements = [statement for statement in granted if statement is not None]
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": name,
            "AssumeRolePolicyDocument": _trust("lambda.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "least-privilege",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _trust(service: str) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


# --- resources ----------------------------------------------------------------------------


DATA_KEY = "DataKey"


def data_key_arn() -> Json:
    return {"Fn::GetAtt": [DATA_KEY, "Arn"]}


def _data_key(deployment: Deployment) -> Json:
    """The one customer managed key of the tables, topics and queues (rotated yearly by KMS).

    Its policy lets the account administer it and hand its use to IAM policies (each function's
    role names it, through the services it calls), and lets SNS encrypt what it delivers to the
    encrypted queues (SNS acts as itself there, not as the publisher), CloudWatch publish its
    alarms to the encrypted alarm topic, and CloudWatch Logs encrypt the state machine's log
    group (and only that group: the encryption context names it).
    """
    account_root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    return {
        DATA_KEY: {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": f"{deployment.prefix}: tables, topics and queues",
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministersAndDelegatesToIam",
                            "Effect": "Allow",
                            "Principal": {"AWS": account_root},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "SnsDeliversToEncryptedQueues",
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        },
                        {
                            "Sid": "CloudWatchAlarmsPublishToTheEncryptedAlarmTopic",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        },
                        {
                            "Sid": "CloudWatchLogsEncryptsTheStateMachinesLogs",
                            "Effect": "Allow",
                            "Principal": {
                                "Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
                            },
                            "Action": [
                                "kms:Encrypt*",
                                "kms:Decrypt*",
                                "kms:ReEncrypt*",
                                "kms:GenerateDataKey*",
                                "kms:Describe*",
                            ],
                            "Resource": "*",
                            "Condition": {
                                "ArnEquals": {
                                    "kms:EncryptionContext:aws:logs:arn": sub_arn(
                                        "logs",
                                        f"log-group:{order_flow_log_group_name(deployment)}",
                                    )
                                }
                            },
                        },
                    ],
                },
            },
        },
        f"{DATA_KEY}Alias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {
                "AliasName": f"alias/{deployment.prefix}",
                "TargetKeyId": {"Ref": DATA_KEY},
            },
        },
    }


def _deny_without_tls(actions: str, resource: Any) -> Statement:
    return {
        "Sid": "DenyWithoutTls",
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def global_indexes(indexes: dict[str, tuple[str, str]]) -> list[Json]:
    """Global secondary indexes by name -> (hash key, range key), projecting everything."""
    return [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, (hash_key, range_key) in indexes.items()
    ]


def _table(
    name: str,
    keys: list[tuple[str, str]],
    protect: bool,
    indexes: dict[str, tuple[str, str]] | None = None,
    stream: bool = False,
) -> Json:
    """A table; ``indexes`` maps a global secondary index's name to its (hash, range) keys;
    ``stream``: with a stream of new items (the outbox relay reads it)."""
    indexes = indexes or {}
    attributes = sorted({key for key, _ in keys} | {k for pair in indexes.values() for k in pair})
    properties: Json = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": key, "KeyType": kind} for key, kind in keys],
        "AttributeDefinitions": [
            {"AttributeName": attribute, "AttributeType": "S"} for attribute in attributes
        ],
    }
    if indexes:
        properties["GlobalSecondaryIndexes"] = global_indexes(indexes)
    if stream:
        properties["StreamSpecification"] = {"StreamViewType": "NEW_IMAGE"}
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": properties
        | {
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": data_key_arn(),
            },
            # Stage.protect_data: off on local stages, so that their teardown deletes the table.
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": protect},
            "DeletionProtectionEnabled": protect,
        },
    }


def _topic(topic: str, name: str, *allowed: Statement, fifo: bool = False) -> Json:
    """A topic encrypted with the data key, which only TLS connections may publish to.

    ``allowed``: statements letting AWS services publish (the account's principals need none:
    their IAM policies decide). ``fifo``: a FIFO topic (``name`` ends in ``.fifo``), which
    drops a message whose deduplication id it delivered in the last five minutes.
    """
    properties: Json = {"TopicName": name, "KmsMasterKeyId": data_key_arn()}
    if fifo:
        properties["FifoTopic"] = True
    else:
        # Publish continues the publisher's trace into SNS and on to SQS (AWSTraceHeader);
        # SNS offers active tracing on standard topics only.
        properties["TracingConfig"] = "Active"
    return {
        topic: {"Type": "AWS::SNS::Topic", "Properties": properties},
        f"{topic}Policy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": topic}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [*allowed, _deny_without_tls("sns:Publish", {"Ref": topic})],
                },
            },
        },
    }


# AWS's advice for SQS event sources: a visibility timeout of at least six times the consuming
# function's timeout, so that Lambda can retry a batch it was throttled on before the messages
# reappear for another poller.
VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT = 6
# The local cloud throttles no invocation, so twice the timeout is enough there (a message never
# reappears while a handler may still run); a failing message is then dead-lettered within
# seconds, not minutes, which is what the tests and a developer wait for.
LOCAL_VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT = 2


def visibility_timeouts_per_function_timeout(deployment: Deployment) -> int:
    if deployment.stage.is_local:
        return LOCAL_VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT
    return VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT


def queue_visibility_timeout_seconds(deployment: Deployment, subscription: Subscription) -> int:
    """Derived from the consuming function's timeout (``chalicelib/functions.py``), never
    declared. A queue with no handler yet gets the standard function timeout."""
    consumer = functions.consumer_of(subscription)
    timeout = consumer.timeout if consumer else functions.STANDARD
    multiple = visibility_timeouts_per_function_timeout(deployment)
    return multiple * timeout.seconds(deployment.stage.is_local)


DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}-dlq"


def _dead_letter_queue(queue: str, name: str) -> Json:
    """A dead-letter queue, encrypted with the data key, TLS only, that keeps messages longest."""
    return {
        queue: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "KmsMasterKeyId": data_key_arn(),
                # SQS's longest: time to find and fix a cause before its messages expire.
                "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
            },
        },
        f"{queue}Policy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [_deny_without_tls("sqs:*", {"Fn::GetAtt": [queue, "Arn"]})],
                },
            },
        },
    }


# Where the orders table's stream sends what the relay still failed on after its retries: the
# position of each such batch in the stream (DDBStreamBatchInfo), not its records.
RELAY_DEAD_LETTERS = "RelayDeadLetters"


def relay_dead_letter_queue_name(deployment: Deployment) -> str:
    return dead_letter_queue_name(f"{deployment.prefix}-relay")


def relay_stream_bounds(deployment: Deployment) -> Json:
    """The relay's stream mapping settings that bound a failing record's retries (both paths)."""
    stream = functions.function(RELAY).trigger
    assert isinstance(stream, OrdersStream)
    bounds = stream.bounds(deployment.stage.is_local)
    return {
        "MaximumRetryAttempts": bounds.retry_attempts,
        "MaximumRecordAgeInSeconds": bounds.record_age_seconds,
        # A batch that fails as a whole (the function crashed or timed out) is split in two,
        # and each half retried, so one bad record does not take its batch with it.
        "BisectBatchOnFunctionError": True,
        # Several batches of a shard at once, an order's records in one of them, in order.
        "ParallelizationFactor": stream.parallelization_factor,
    }


def _from_own_topic_only(queue: str) -> list[Statement]:
    """SNS may deliver to the queue from the order-events topic, and from no other topic.

    The explicit deny outlasts any allow added later (another topic's subscription, a broader
    statement): whatever else the policy says, SNS sends on behalf of that one topic only. The
    account's own principals are governed by their IAM policies (only the deadline checker may
    send, to its own queue); the consumers check every event against its stored order anyway.
    """
    own_topic = {"aws:SourceArn": {"Ref": "OrderEventsTopic"}}
    sns_sending = {
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
    }
    return [
        {"Sid": "OrderEventsTopicDelivers", "Effect": "Allow"}
        | sns_sending
        | {"Condition": {"ArnEquals": own_topic}},
        {"Sid": "NoOtherTopicDelivers", "Effect": "Deny"}
        | sns_sending
        | {"Condition": {"ArnNotEquals": own_topic}},
    ]


def _subscribed_queue(deployment: Deployment, subscription: Subscription) -> Json:
    """A service's queue with its dead-letter queue, subscribed to the order events."""
    stage = deployment.stage
    queue = queue_id(subscription)
    dead_letters = dead_letter_queue_id(subscription)
    name = subscription.queue_for(deployment.prefix)
    return {
        **_dead_letter_queue(dead_letters, dead_letter_queue_name(name)),
        queue: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "KmsMasterKeyId": data_key_arn(),
                "VisibilityTimeout": queue_visibility_timeout_seconds(deployment, subscription),
                "DelaySeconds": (
                    stage.restaurant_deadline_seconds if subscription.delayed_until_deadline else 0
                ),
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
                    "maxReceiveCount": stage.max_receive_count,
                },
            },
        },
        f"{queue}Policy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        *_from_own_topic_only(queue),
                        _deny_without_tls("sqs:*", {"Fn::GetAtt": [queue, "Arn"]}),
                    ],
                },
            },
        },
        f"{queue}Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "OrderEventsTopic"},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": [queue, "Arn"]},
                "RawMessageDelivery": True,
                "FilterPolicyScope": "MessageAttributes",
                "FilterPolicy": subscription.filter_policy(),
            },
        },
    }


ORDER_FLOW_LOGS = "OrderFlowLogs"
LOG_RETENTION_DAYS = 30
# The permissions Step Functions' role needs to log to CloudWatch Logs (AWS: "IAM policies for
# logging to CloudWatch Logs"); log delivery is set up through these, none of which takes a
# resource narrower than "*".
STATES_LOG_DELIVERY = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]


def order_flow_log_group_name(deployment: Deployment) -> str:
    # /aws/vendedlogs/: AWS's advice for vended logs, so that the account's logs resource policy
    # (limited to 5,120 characters) covers every such group with one entry.
    return f"/aws/vendedlogs/states/{state_machine_name(deployment)}"


def _state_machine(deployment: Deployment) -> Json:
    """The one ASL file, its ``${...}FunctionArn`` placeholders filled by CloudFormation."""
    task_arns = [function_arn(deployment, name) for name in TASK_FUNCTIONS]
    return {
        "OrderFlowRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _trust("states.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "invoke-order-flow-tasks",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                _allow(["lambda:InvokeFunction"], task_arns),
                                # What AWS documents for logging to CloudWatch Logs: the log
                                # delivery actions have no resource-level permissions.
                                _allow(STATES_LOG_DELIVERY, "*"),
                                # X-Ray has no resource-level permissions for these.
                                _allow(
                                    [
                                        "xray:PutTraceSegments",
                                        "xray:PutTelemetryRecords",
                                        "xray:GetSamplingRules",
                                        "xray:GetSamplingTargets",
                                    ],
                                    "*",
                                ),
                            ],
                        },
                    }
                ],
            },
        },
        "OrderFlow": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": state_machine_name(deployment),
                "StateMachineType": "STANDARD",
                "RoleArn": {"Fn::GetAtt": ["OrderFlowRole", "Arn"]},
                "DefinitionString": ASL.read_text(),
                "DefinitionSubstitutions": {
                    function.trigger.placeholder: function_arn(deployment, function.name)
                    for function in functions.FUNCTIONS
                    if isinstance(function.trigger, StateMachineTask)
                },
                "TracingConfiguration": {"Enabled": True},
                # Failed, timed-out and aborted executions, and the task failures behind them,
                # without the orders' data.
                "LoggingConfiguration": {
                    "Level": "ERROR",
                    "IncludeExecutionData": False,
                    "Destinations": [
                        {
                            "CloudWatchLogsLogGroup": {
                                "LogGroupArn": {"Fn::GetAtt": [ORDER_FLOW_LOGS, "Arn"]}
                            }
                        }
                    ],
                },
            },
        },
        ORDER_FLOW_LOGS: {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": order_flow_log_group_name(deployment),
                "RetentionInDays": LOG_RETENTION_DAYS,
                "KmsKeyId": data_key_arn(),
            },
        },
    }


# --- nothing stuck: alarms on dead letters and on executions that did not succeed ----------

ALARM_TOPIC = "AlarmTopic"
# The state machine's metrics an alarm watches: each counts executions that ended without
# succeeding (aborted: only a person's StopExecution does that; the flow never does).
EXECUTION_ALARMS = {
    "ExecutionsFailed": "failed",
    "ExecutionsTimedOut": "timed out",
    "ExecutionsAborted": "aborted",
}


def dead_letter_queue_id(subscription: Subscription) -> str:
    return f"{queue_id(subscription)}DeadLetters"


# How far behind the table's stream the relay may fall (its IteratorAge) before it alarms.
RELAY_BEHIND_MS = 60_000


def _alarm_topic(deployment: Deployment) -> Json:
    """Where every alarm goes (subscribe a pager, an e-mail or a chat hook to it)."""
    cloudwatch_publishes = {
        "Sid": "CloudWatchAlarmsPublish",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": {"Ref": ALARM_TOPIC},
        "Condition": {
            "ArnLike": {"aws:SourceArn": sub_arn("cloudwatch", f"alarm:{deployment.prefix}-*")}
        },
    }
    return _topic(ALARM_TOPIC, f"{deployment.prefix}-alarms", cloudwatch_publishes)


def _alarm(name: str, description: str, metric: Json, threshold: int = 0) -> Json:
    """Alarm as soon as one period's value is above ``threshold`` (by default: any); no data
    (nothing happened) is fine."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            **metric,
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
        },
    }


def _dead_letters_alarm(deployment: Deployment, service: str, queue: str, why: str) -> Json:
    return _alarm(
        f"{deployment.prefix}-{service}-dead-letters",
        f"Messages wait in the {service} dead-letter queue: find why they failed ({why}), fix "
        f"it, then `python -m tools.redrive --stage {deployment.stage.name} --queue "
        f"{service}`.",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            "Statistic": "Maximum",
        },
    )


def _alarms(deployment: Deployment) -> Json:
    alarms: Json = {}
    for subscription in SUBSCRIPTIONS:
        dead_letters = dead_letter_queue_id(subscription)
        alarms[f"{dead_letters}Alarm"] = _dead_letters_alarm(
            deployment, subscription.service, dead_letters, "the consumer's logs"
        )
    alarms[f"{RELAY_DEAD_LETTERS}Alarm"] = _dead_letters_alarm(
        deployment,
        "relay",
        RELAY_DEAD_LETTERS,
        "the relay's logs: 'event not relayed' or 'event item not readable'; act within the "
        "stream's 24 hours, after which redrive can only report them",
    )
    for metric, ended in EXECUTION_ALARMS.items():
        alarms[f"OrderFlow{metric}Alarm"] = _alarm(
            f"{deployment.prefix}-flow-{metric.removeprefix('Executions').lower()}",
            f"Order-flow executions {ended}: the order's timeline shows where it stopped, the "
            f"state machine's log group {order_flow_log_group_name(deployment)} why.",
            {
                "Namespace": "AWS/States",
                "MetricName": metric,
                "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": "OrderFlow"}}],
                "Statistic": "Sum",
            },
        )
    alarms["RelayBehindAlarm"] = _alarm(
        f"{deployment.prefix}-relay-behind",
        "The outbox relay is over a minute behind the orders table's stream: events, tellings "
        "and executions wait. A record keeps failing (retried within its bounds, then "
        "dead-lettered) or the relay cannot keep up; its logs name the record and why ('event "
        "not relayed').",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "IteratorAge",
            "Dimensions": [{"Name": "FunctionName", "Value": deployment.function_name(RELAY)}],
            "Statistic": "Maximum",
        },
        threshold=RELAY_BEHIND_MS,
    )
    return alarms


def flow_weights_parameter_name(deployment: Deployment) -> str:
    return f"/{deployment.prefix}/flow-weights"


def _flow_weights_parameter(deployment: Deployment) -> Json:
    # The deploy sets the initial weights only: CloudFormation leaves a value changed since
    # (python -m tools.flow_weights) alone until this template's own value changes.
    return {
        "Type": "AWS::SSM::Parameter",
        "Properties": {
            "Name": flow_weights_parameter_name(deployment),
            "Type": "String",
            "Value": json.dumps(INITIAL_FLOW_WEIGHTS),
            "Description": "Weights choosing the flow of an order that names none",
        },
    }


def has_fault_switch(deployment: Deployment) -> bool:
    """Only local stages: a test instrument, and no AWS stage pays an SSM read per container
    every few seconds, or lets whoever may write a parameter fail its orders."""
    return deployment.stage.is_local


def faults_parameter_name(deployment: Deployment) -> str:
    return f"/{deployment.prefix}/faults"


def _faults_parameter(deployment: Deployment) -> Json:
    # Off. A fault run (python -m tools.fault_run) turns it on and back off; the deploy leaves
    # a changed value alone until this template's own value changes, like the flow weights.
    return {
        "Type": "AWS::SSM::Parameter",
        "Properties": {
            "Name": faults_parameter_name(deployment),
            "Type": "String",
            "Value": json.dumps(faults.OFF),
            "Description": "Fault switch: the rate of injected transient failures (0: off)",
        },
    }


def auth_keys_parameter_name(deployment: Deployment) -> str:
    return f"/{deployment.prefix}/auth-keys"


def _auth_keys_parameter(deployment: Deployment) -> Json:
    """The development issuer's public JWKS, which local stages' token check trusts."""
    return {
        "Type": "AWS::SSM::Parameter",
        "Properties": {
            "Name": auth_keys_parameter_name(deployment),
            "Type": "String",
            "Value": json.dumps(dev_issuer.public_jwks()),
            "Description": "Public keys of the local development token issuer (JWKS)",
        },
    }


def _resources(deployment: Deployment) -> Json:
    prefix = deployment.prefix
    protect = deployment.stage.protect_data
    resources: Json = {
        **_data_key(deployment),
        "OrdersTable": _table(
            prefix,
            [("pk", "HASH"), ("sk", "RANGE")],
            protect,
            indexes=dynamodb_orders.INDEXES,
            stream=True,
        ),
        "VouchersTable": _table(f"{prefix}-vouchers", [("voucher_id", "HASH")], protect),
        **_topic("OrderEventsTopic", f"{prefix}-events"),
        # FIFO: a telling repeated after a crash (told, not yet marked done) is dropped.
        **_topic("NotificationsTopic", f"{prefix}-notifications.fifo", fifo=True),
        "FlowWeightsParameter": _flow_weights_parameter(deployment),
        **_state_machine(deployment),
        **_alarm_topic(deployment),
    }
    if development_issuer_trusted(deployment.stage):
        resources["AuthKeysParameter"] = _auth_keys_parameter(deployment)
    if has_fault_switch(deployment):
        resources["FaultsParameter"] = _faults_parameter(deployment)
    for subscription in SUBSCRIPTIONS:
        resources.update(_subscribed_queue(deployment, subscription))
    resources.update(
        _dead_letter_queue(RELAY_DEAD_LETTERS, relay_dead_letter_queue_name(deployment))
    )
    resources.update(_alarms(deployment))
    for function in FUNCTIONS:
        resources[role_id(function)] = _function_role(deployment, function)
    return resources


def output_key(variable: str) -> str:
    """``ORDERS_TABLE_NAME`` -> ``OrdersTableName`` (output keys are alphanumeric)."""
    return "".join(part.capitalize() for part in variable.split("_"))


RELAY_DEAD_LETTERS_ARN = f"{RELAY_DEAD_LETTERS}Arn"


def render(deployment: Deployment) -> Json:
    """The infrastructure of one deployment; its outputs are what the functions are handed."""
    outputs: Json = {
        output_key(variable): {"Value": value}
        for variable, value in function_environment(deployment).items()
    }
    for function in FUNCTIONS:
        outputs[role_id(function) + "Arn"] = {"Value": {"Fn::GetAtt": [role_id(function), "Arn"]}}
    for subscription in SUBSCRIPTIONS:
        outputs[queue_id(subscription) + "Url"] = {"Value": {"Ref": queue_id(subscription)}}
    # The chalice path sets the relay's stream mapping's on-failure destination from it.
    outputs[RELAY_DEAD_LETTERS_ARN] = {"Value": {"Fn::GetAtt": [RELAY_DEAD_LETTERS, "Arn"]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{APP_NAME}: what Chalice does not manage ({deployment.prefix})",
        "Resources": _resources(deployment),
        "Outputs": outputs,
    }


def function_overrides(deployment: Deployment) -> Json:
    """For the SAM path: what ``chalice package`` does not know of each declared function: its
    name, role and environment in this stack, this stack's stream, and partial batch responses;
    and of the REST API its tracing and the stage's throttling."""
    environment = function_environment(deployment)
    # `chalice deploy` turns X-Ray tracing on for the API stage (config "xray": true);
    # `chalice package` leaves it out of the SAM API, so it is set here.
    # Chalice has no API throttling setting: the stage's is added here.
    throttling = api_throttling.method_settings(deployment.stage.api_throttling)
    overrides: Json = {
        "RestAPI": {"Properties": {"TracingEnabled": True, "MethodSettings": throttling}}
    }
    if declares_durable_function(deployment):
        overrides.update(_durable_function(deployment))
    for function in functions.FUNCTIONS:
        function_id = logical_id(function.name)
        override: Json = {
            "Properties": {
                "FunctionName": deployment.function_name(function.name),
                "Role": {"Fn::GetAtt": [role_id(function.name), "Arn"]},
                "Environment": {"Variables": environment},
            }
        }
        match function.trigger:
            case SqsQueue(subscription):
                # Chalice writes the queue and its batching (the app read the stage's values);
                # partial batch responses and the order after the queue are added here.
                partial = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
                events = {f"{function_id}SqsEventSource": {"Properties": partial}}
                override["DependsOn"] = [queue_id(subscription)]
            case OrdersStream():
                # Chalice writes the stream ARN the app was given (none yet); this stack's
                # own table's replaces it.
                # What still fails after the bounded retries goes to the relay's dead-letter queue.
                stream = {
                    "Stream": {"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    **relay_stream_bounds(deployment),
                    "DestinationConfig": {
                        "OnFailure": {
                            "Type": "SQS",
                            "Destination": {"Fn::GetAtt": [RELAY_DEAD_LETTERS, "Arn"]},
                        }
                    },
                }
                events = {f"{function_id}DynamodbEventSource": {"Properties": stream}}
            case _:
                events = {}
        if events:
            override["Properties"]["Events"] = events
        overrides[function_id] = override
    return overrides
