"""The SAM path: ``chalice package --merge-template`` into one template, deployed by CloudFormation.

The merge template adds what Chalice does not manage (tables, topics, queues with
dead-letter queues, subscriptions, the state machine) and points every function
at them. The state machine's ``DefinitionUri`` names the one ASL file; packaging
uploads it and the deployment zip to S3, as ``aws cloudformation package`` does.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.entrypoints.orchestration import TASKS
from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription
from deploy.chalice_app import CHALICE
from deploy.infrastructure import Clients, arn
from deploy.settings import ASL, PROJECT, Stage

BUILD = PROJECT / "build"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


def logical_id(name: str) -> str:
    """Chalice's logical id: ``notify_restaurant_task`` -> ``NotifyRestaurantTask``."""
    return "".join(part.capitalize() for part in re.split(r"[_-]", name))


def sub_arn(service: str, resource: str) -> dict[str, str]:
    prefix = "arn:${AWS::Partition}:" + service + ":${AWS::Region}:${AWS::AccountId}"
    return {"Fn::Sub": f"{prefix}:{resource}"}


def merge_template(
    stage: Stage, handlers_by_queue: dict[str, str], function_names: list[str], asl_uri: str
) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "OrdersTable": _table(stage.orders_table, [("pk", "HASH"), ("sk", "RANGE")]),
        "VouchersTable": _table(stage.vouchers_table, [("voucher_id", "HASH")]),
        "OrderEventsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": stage.events_topic},
        },
        "NotificationsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": stage.notifications_topic},
        },
        "OrderFlow": {
            "Type": "AWS::Serverless::StateMachine",
            "Properties": {
                "Name": stage.state_machine,
                "Type": "STANDARD",
                "DefinitionUri": asl_uri,
                "DefinitionSubstitutions": {
                    placeholder: {"Fn::GetAtt": [logical_id(task.function_name), "Arn"]}
                    for placeholder, task in TASKS.items()
                },
                "Policies": [
                    {
                        "LambdaInvokePolicy": {
                            "FunctionName": {"Ref": logical_id(task.function_name)}
                        }
                    }
                    for task in TASKS.values()
                ],
                "Tracing": {"Enabled": True},
            },
        },
    }
    for subscription in SUBSCRIPTIONS:
        resources.update(_subscribed_queue(stage, subscription))

    environment = {
        "ORDERS_TABLE_NAME": {"Ref": "OrdersTable"},
        "VOUCHERS_TABLE_NAME": {"Ref": "VouchersTable"},
        "ORDER_EVENTS_TOPIC_ARN": {"Ref": "OrderEventsTopic"},
        "NOTIFICATIONS_TOPIC_ARN": {"Ref": "NotificationsTopic"},
        # Built, not referenced: the tasks the state machine names cannot depend on it.
        "ORDER_FLOW_STATE_MACHINE_ARN": sub_arn("states", f"stateMachine:{stage.state_machine}"),
    }
    for name in [*function_names, "api_handler"]:
        function_id = "APIHandler" if name == "api_handler" else logical_id(name)
        resources[function_id] = {"Properties": {"Environment": {"Variables": environment}}}
    for subscription in SUBSCRIPTIONS:
        function_id = logical_id(handlers_by_queue[subscription.queue])
        resources[function_id]["DependsOn"] = [_queue_id(subscription)]
        resources[function_id]["Properties"]["Events"] = {
            f"{function_id}SqsEventSource": {
                "Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
            }
        }
    return {"Resources": resources}


def _table(name: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": key, "KeyType": kind} for key, kind in keys],
            "AttributeDefinitions": [
                {"AttributeName": key, "AttributeType": "S"} for key, _ in keys
            ],
        },
    }


def _queue_id(subscription: Subscription) -> str:
    return logical_id(subscription.service) + "Queue"


def _subscribed_queue(stage: Stage, subscription: Subscription) -> dict[str, Any]:
    queue_id = _queue_id(subscription)
    dlq_id = queue_id + "DeadLetters"
    name = subscription.queue_for(stage.resource_prefix)
    delay = stage.restaurant_deadline_seconds if subscription.delayed_until_deadline else 0
    return {
        dlq_id: {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-dlq"}},
        queue_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "VisibilityTimeout": stage.queue_visibility_timeout_seconds,
                "DelaySeconds": delay,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                    "maxReceiveCount": stage.max_receive_count,
                },
            },
        },
        queue_id + "Policy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                            "Condition": {
                                "ArnEquals": {"aws:SourceArn": {"Ref": "OrderEventsTopic"}}
                            },
                        }
                    ],
                },
            },
        },
        queue_id + "Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "OrderEventsTopic"},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": [queue_id, "Arn"]},
                "RawMessageDelivery": True,
                "FilterPolicyScope": "MessageAttributes",
                "FilterPolicy": subscription.filter_policy(),
            },
        },
    }


def build(stage: Stage, env: dict[str, str]) -> Path:
    """``chalice package`` with the merge template; returns the folder with sam.json."""
    from app import app

    out = BUILD / f"sam-{stage.resource_prefix}"
    out.mkdir(parents=True, exist_ok=True)
    handlers_by_queue = {source.queue: source.name for source in app.event_sources}
    function_names = [f.name for f in app.pure_lambda_functions] + list(handlers_by_queue.values())
    asl_path = Path("..") / ".." / ASL.relative_to(PROJECT)
    merge = merge_template(stage, handlers_by_queue, function_names, str(asl_path))
    merge_file = BUILD / f"merge-{stage.resource_prefix}.json"
    merge_file.write_text(json.dumps(merge, indent=2) + "\n")
    subprocess.run(
        [
            str(CHALICE),
            "package",
            "--stage",
            stage.name,
            "--merge-template",
            str(merge_file),
            str(out),
        ],
        cwd=PROJECT,
        env=env | {"ORDERS_RESOURCE_PREFIX": stage.resource_prefix},
        check=True,
    )
    return out


def package(aws: Clients, stage: Stage, out: Path) -> dict[str, Any]:
    """Upload the code and the ASL to S3 and point the template at them."""
    template = json.loads((out / "sam.json").read_text())
    account = aws.sts.get_caller_identity()["Account"]
    bucket = f"{stage.resource_prefix}-artifacts-{account}"
    try:
        aws.s3.head_bucket(Bucket=bucket)
    except ClientError:
        region = aws.session.region_name
        location = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        aws.s3.create_bucket(Bucket=bucket, **location)
    code_key = f"code/{int(time.time())}-deployment.zip"
    aws.s3.upload_file(str(out / "deployment.zip"), bucket, code_key)
    asl_key = f"statemachines/{int(time.time())}-{ASL.name}"
    aws.s3.upload_file(str(ASL), bucket, asl_key)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"s3://{bucket}/{code_key}"
        if resource["Type"] == "AWS::Serverless::StateMachine":
            properties["DefinitionUri"] = {"Bucket": bucket, "Key": asl_key}
    return template


def up(stage: Stage, aws: Clients, env: dict[str, str]) -> dict[str, Any]:
    out = build(stage, env)
    template = package(aws, stage, out)
    outputs = _deploy_stack(aws, stack_name(stage), template)
    api_id = outputs["RestAPIId"]
    endpoint = env.get("AWS_ENDPOINT_URL")
    api_url = (
        f"{endpoint.rstrip('/')}/restapis/{api_id}/api/_user_request_"
        if endpoint
        else outputs["EndpointURL"].rstrip("/")
    )
    return {
        "stage": stage.name,
        "deployed_with": "chalice package + CloudFormation (SAM)",
        "stack": stack_name(stage),
        "api_url": api_url,
        "state_machine_arn": arn(aws, "states", f"stateMachine:{stage.state_machine}"),
        "events_topic_arn": arn(aws, "sns", stage.events_topic),
        "notifications_topic_arn": arn(aws, "sns", stage.notifications_topic),
        "orders_table": stage.orders_table,
        "vouchers_table": stage.vouchers_table,
        "queues": {s.service: s.queue_for(stage.resource_prefix) for s in SUBSCRIPTIONS},
    }


def stack_name(stage: Stage) -> str:
    return f"{stage.resource_prefix}-{stage.name}"


def _deploy_stack(aws: Clients, name: str, template: dict[str, Any]) -> dict[str, str]:
    cfn = aws.cloudformation
    exists = _stack_status(aws, name) not in (None, "REVIEW_IN_PROGRESS")
    change_set = f"deploy-{int(time.time())}"
    cfn.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateBody=json.dumps(template),
        Capabilities=CAPABILITIES,
    )
    status = _wait_change_set(aws, name, change_set)
    if status == "NO_CHANGES":
        cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
    else:
        cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
        final = _wait_stack(aws, name)
        if not final.endswith("_COMPLETE") or "ROLLBACK" in final:
            raise SystemExit(f"stack {name} ended {final}: {_failures(aws, name)}")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _stack_status(aws: Clients, name: str) -> str | None:
    try:
        return str(aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _wait_change_set(aws: Clients, name: str, change_set: str, limit: float = 300) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        described = aws.cloudformation.describe_change_set(StackName=name, ChangeSetName=change_set)
        if described["Status"] == "CREATE_COMPLETE":
            return "READY"
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if "didn't contain changes" in reason or "No updates" in reason:
                return "NO_CHANGES"
            raise SystemExit(f"change set failed: {reason}")
        time.sleep(1)
    raise SystemExit(f"change set {change_set} not ready after {limit:.0f}s")


def _wait_stack(aws: Clients, name: str, limit: float = 900) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = _stack_status(aws, name) or "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(2)
    raise SystemExit(f"stack {name} still in progress after {limit:.0f}s")


def _failures(aws: Clients, name: str) -> str:
    events = aws.cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    return "; ".join(
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
    )


def down(stage: Stage, aws: Clients) -> None:
    name = stack_name(stage)
    if _stack_status(aws, name) is None:
        return
    aws.cloudformation.delete_stack(StackName=name)
    final = _wait_stack(aws, name)
    if final != "DELETE_COMPLETE":
        raise SystemExit(f"stack {name} ended {final}: {_failures(aws, name)}")
