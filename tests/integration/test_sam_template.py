"""Integration tests of the one declaration, rendered both ways; no cloud needed.

The SAM path's template is really built by ``chalice package --merge-template``;
the chalice path's stack is ``deploy.template.render``. Both are linted with cfn-lint.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entrypoints.orchestration import TASKS
from chalicelib.functions import consumer_of
from chalicelib.functions import function as declared_function
from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import function_package, package, template
from deploy.stages import ASL, Deployment, DeployPath, load_stage
from tests.shared_run import once_per_run

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
LOCAL = load_stage("local")
CHALICE_PATH = Deployment(LOCAL, DeployPath.CHALICE)
SAM_PATH = Deployment(LOCAL, DeployPath.SAM)


@pytest.fixture(scope="module")
def built() -> Path:
    # The first process of the run that asks builds the package; the others read it.
    env = dict(os.environ) | {"AWS_DEFAULT_REGION": "us-east-1"}
    folder = once_per_run(
        "sam-local-package", lambda: {"folder": str(package.build(SAM_PATH, env))}
    )
    return Path(folder["folder"])


@pytest.fixture(scope="module")
def sam_template(built: Path) -> dict[str, Any]:
    return dict(json.loads((built / package.SAM_TEMPLATE).read_text()))


@pytest.fixture(scope="module")
def stack_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return template.render(CHALICE_PATH)


def _lint(path: Path) -> None:
    linted = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _same_names(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The resources with the deployment's prefix replaced, to compare two deployments."""
    text = json.dumps(resources)
    return dict(json.loads(re.sub(rf"\b{re.escape(prefix)}\b", "PREFIX", text)))


def test_the_sam_template_passes_cfn_lint(built: Path) -> None:
    _lint(built / package.SAM_TEMPLATE)


def test_the_chalice_paths_stack_passes_cfn_lint(
    stack_template: dict[str, Any], tmp_path: Path
) -> None:
    rendered = tmp_path / "stack.json"
    rendered.write_text(json.dumps(stack_template))
    _lint(rendered)


def test_both_paths_declare_the_same_infrastructure(
    sam_template: dict[str, Any], stack_template: dict[str, Any]
) -> None:
    # GIVEN the SAM template (functions included) and the chalice path's stack; the durable
    # function, its role and the grants on it are the SAM path's alone (Chalice cannot
    # declare a durable function)
    sam = {
        name: _without_durable_grants(resource)
        for name, resource in sam_template["Resources"].items()
        if not resource["Type"].startswith("AWS::Serverless::")
        and resource["Type"] not in CHALICE_MANAGED
        and name != template.role_id(template.DURABLE_FUNCTION)
    }
    # THEN every non-Chalice resource is in both, with the same properties
    assert set(sam) == set(stack_template["Resources"])
    assert _same_names(sam, SAM_PATH.prefix) == _same_names(
        stack_template["Resources"], CHALICE_PATH.prefix
    )


def _without_durable_grants(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["Type"] != "AWS::IAM::Role":
        return resource
    kept = json.loads(json.dumps(resource))
    for policy in kept["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        document["Statement"] = [
            statement
            for statement in document["Statement"]
            if template.DURABLE_FUNCTION not in json.dumps(statement["Resource"])
        ]
    return dict(kept)


# What `chalice package` itself adds for the REST API (and its permission).
CHALICE_MANAGED = {"AWS::Lambda::Permission", "AWS::ApiGateway::RestApi"}


def test_the_parity_check_fails_when_one_path_gains_a_queue(
    sam_template: dict[str, Any], stack_template: dict[str, Any]
) -> None:
    # GIVEN a queue added to the SAM path only
    sam = copy.deepcopy(sam_template)
    sam["Resources"]["ExtraQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    # THEN the comparison above fails
    with pytest.raises(AssertionError):
        test_both_paths_declare_the_same_infrastructure(sam, stack_template)


def test_every_sam_function_uses_the_declared_role_environment_name_and_settings(
    sam_template: dict[str, Any],
) -> None:
    functions = {
        name: resource["Properties"]
        for name, resource in sam_template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    chalice_functions = {template.logical_id(f) for f in template.FUNCTIONS}
    assert set(functions) == chalice_functions | {template.DURABLE_FUNCTION_ID}
    environment = template.function_environment(SAM_PATH)
    for name in template.FUNCTIONS:
        properties = functions[template.logical_id(name)]
        assert properties["Role"] == {"Fn::GetAtt": [template.role_id(name), "Arn"]}
        assert properties["Environment"]["Variables"] == environment
        assert properties["FunctionName"] == SAM_PATH.function_name(name)
        # chalicelib/functions.py's timeout and memory, as for the chalice deploy path
        declared = declared_function(name)
        assert properties["Timeout"] == declared.timeout.seconds(LOCAL.is_local)
        assert properties["MemorySize"] == declared.memory_mb
        reserved = declared.reserved.executions(LOCAL.is_local) if declared.reserved else None
        assert properties.get("ReservedConcurrentExecutions") == reserved


def test_the_state_machine_is_the_one_asl_file_with_every_task_substituted(
    stack_template: dict[str, Any],
) -> None:
    machine = stack_template["Resources"]["OrderFlow"]["Properties"]
    assert machine["DefinitionString"] == ASL.read_text()
    assert set(machine["DefinitionSubstitutions"]) == set(TASKS)
    for placeholder, task in TASKS.items():
        arn = machine["DefinitionSubstitutions"][placeholder]["Fn::Sub"]
        assert arn.endswith(f":function:{CHALICE_PATH.function_name(task.function_name)}")


def test_every_subscription_has_a_queue_a_dead_letter_queue_and_its_filter(
    stack_template: dict[str, Any],
) -> None:
    resources = stack_template["Resources"]
    for subscription in SUBSCRIPTIONS:
        queue_id = template.queue_id(subscription)
        queue = resources[queue_id]["Properties"]
        assert queue["QueueName"] == subscription.queue_for(CHALICE_PATH.prefix)
        assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in resources
        sns = resources[f"{queue_id}Subscription"]["Properties"]
        assert sns["FilterPolicy"] == subscription.filter_policy()
        assert sns["RawMessageDelivery"] is True
        assert (queue["DelaySeconds"] > 0) == subscription.delayed_until_deadline


def test_every_sqs_handler_reports_batch_item_failures_on_its_own_queue(
    sam_template: dict[str, Any],
) -> None:
    sources = {
        name: event["Properties"]
        for name, r in sam_template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
        for event in r["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    assert len(sources) == len(SUBSCRIPTIONS)
    for subscription in SUBSCRIPTIONS:
        consumer = consumer_of(subscription)
        assert consumer is not None
        source = sources[template.logical_id(consumer.name)]
        assert source["BatchSize"] == consumer.trigger.batch_size  # type: ignore[union-attr]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert source["Queue"] == template.sub_arn("sqs", subscription.queue_for(SAM_PATH.prefix))
        assert source["MaximumBatchingWindowInSeconds"] == LOCAL.sqs_batching_window_seconds


def test_an_aws_stage_packages_from_a_fresh_checkout_with_only_the_declared_roles() -> None:
    # GIVEN an AWS stage that was never deployed (its config has no environment or roles)
    dev = Deployment(load_stage("dev"), DeployPath.SAM)
    env = dict(os.environ) | {"AWS_DEFAULT_REGION": "us-east-1"}
    # WHEN its SAM template is built
    out = package.build(dev, env)
    built = json.loads((out / package.SAM_TEMPLATE).read_text())
    # THEN the only roles are the declared ones (Chalice adds no role of its own)
    roles = {k for k, v in built["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    declared = [*template.FUNCTIONS, template.DURABLE_FUNCTION]
    assert roles == {template.role_id(f) for f in declared} | {"OrderFlowRole"}
    # AND the durable function (only here: SAM, an AWS stage) runs the SDK's handler from the
    # same code, by its alias, with its execution's timeout and retention (docs/durable.md)
    durable = built["Resources"][template.DURABLE_FUNCTION_ID]["Properties"]
    assert durable["Handler"] == "chalicelib.entrypoints.durable.order_flow"
    assert durable["CodeUri"] == built["Resources"]["APIHandler"]["Properties"]["CodeUri"]
    assert durable["AutoPublishAlias"] == template.DURABLE_ALIAS
    assert durable["DurableConfig"] == {
        "ExecutionTimeout": 2
        * (dev.stage.restaurant_deadline_seconds + dev.stage.delivery_deadline_seconds),
        "RetentionPeriodInDays": template.DURABLE_RETENTION_DAYS,
    }
    assert durable["Runtime"] in {"python3.13", "python3.14"}  # what the SDK needs
    # AND cfn-lint knows every property of it
    _lint(out / package.SAM_TEMPLATE)
    assert template.function_environment(dev)["ORDER_FLOW_DURABLE_FUNCTION"] == (
        f"{template.durable_function_name(dev)}:{template.DURABLE_ALIAS}"
    )
    # AND it has no local tuning: no SQS mapping waits to fill a batch (in AWS a batching
    # window delays every message), and the functions are not told of one
    assert "ORDERS_SQS_BATCHING_WINDOW_SECONDS" not in template.function_environment(dev)
    functions = [r for r in built["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    sqs = [
        e
        for f in functions
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "SQS"
    ]
    assert len(sqs) == len(SUBSCRIPTIONS)
    assert all(not e["Properties"].get("MaximumBatchingWindowInSeconds") for e in sqs)
    # AND its API is throttled at the stage's rate, and the functions reserve AWS's numbers
    assert built["Resources"]["RestAPI"]["Properties"]["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": dev.stage.api_throttling.rate_per_second,
            "ThrottlingBurstLimit": dev.stage.api_throttling.burst,
        }
    ]
    for name in template.FUNCTIONS:
        declared = declared_function(name).reserved
        reserved = built["Resources"][template.logical_id(name)]["Properties"].get(
            "ReservedConcurrentExecutions"
        )
        assert reserved == (declared.aws if declared else None), name
    # AND the code holds the app and the functions' libraries (tests/unit/test_packaging.py), not
    # what the Lambda runtime brings (botocore), no part they leave out, and bytecode only of
    # the modules it ships (none a local run left behind)
    with zipfile.ZipFile(out / "deployment.zip") as code:
        names = code.namelist()
    libraries = {entry.name for entry in function_package.VENDOR.iterdir()}
    assert {name.split("/")[0] for name in names} == {"app.py", "chalice", "chalicelib"} | libraries
    unused = [Path(part) for part in function_package.UNUSED]
    assert not [n for n in names if any(Path(n).is_relative_to(p) for p in unused)]
    compiled = [name for name in names if "__pycache__" in name]
    shipped = {name.removesuffix(".py") for name in names if name.endswith(".py")}
    tag = f".{sys.implementation.cache_tag}.pyc"
    sources = [name.replace("__pycache__/", "").removesuffix(tag) for name in compiled]
    assert compiled and all(name.endswith(tag) for name in compiled)
    assert [source for source in sources if source not in shipped] == []


# --- data at rest and in transit (both paths declare the same resources: see the parity test)

DATA_KEY_ARN = {"Fn::GetAtt": [template.DATA_KEY, "Arn"]}


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == kind}


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_every_table_topic_and_queue_is_encrypted_with_the_one_rotated_key(stage: str) -> None:
    resources = template.render(Deployment(load_stage(stage), DeployPath.CHALICE))["Resources"]
    (key,) = _of_type(resources, "AWS::KMS::Key").values()
    assert key["EnableKeyRotation"] is True
    (alias,) = _of_type(resources, "AWS::KMS::Alias").values()
    assert alias == {"AliasName": f"alias/orders-{stage}", "TargetKeyId": {"Ref": "DataKey"}}
    tables = _of_type(resources, "AWS::DynamoDB::Table")
    topics = _of_type(resources, "AWS::SNS::Topic")
    queues = _of_type(resources, "AWS::SQS::Queue")
    # Topics: order events, notifications to people, alarms; queues: each subscription's and its
    # dead-letter queue, and the relay's dead-letter queue.
    assert (len(tables), len(topics), len(queues)) == (2, 3, 2 * len(SUBSCRIPTIONS) + 1)
    for table in tables.values():
        assert table["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": DATA_KEY_ARN,
        }
    for encrypted in [*topics.values(), *queues.values()]:
        assert encrypted["KmsMasterKeyId"] == DATA_KEY_ARN


def _denies_without_tls(statement: dict[str, Any]) -> bool:
    return (
        statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    )


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_every_queue_and_topic_has_a_policy_denying_requests_without_tls(stage: str) -> None:
    resources = template.render(Deployment(load_stage(stage), DeployPath.CHALICE))["Resources"]
    denied: list[Any] = []
    for kind, targets in (("AWS::SQS::QueuePolicy", "Queues"), ("AWS::SNS::TopicPolicy", "Topics")):
        for policy in _of_type(resources, kind).values():
            statements = policy["PolicyDocument"]["Statement"]
            (deny,) = [s for s in statements if _denies_without_tls(s)]
            (target,) = policy[targets]
            assert deny["Resource"] in ({"Fn::GetAtt": [target["Ref"], "Arn"]}, target)
            denied.append(target["Ref"])
    queues_and_topics = set(_of_type(resources, "AWS::SQS::Queue"))
    queues_and_topics |= set(_of_type(resources, "AWS::SNS::Topic"))
    assert sorted(denied) == sorted(queues_and_topics)


def test_sns_still_delivers_to_each_subscribed_queue() -> None:
    resources = template.render(CHALICE_PATH)["Resources"]
    for subscription in SUBSCRIPTIONS:
        queue = template.queue_id(subscription)
        (allow,) = [
            s
            for s in resources[f"{queue}Policy"]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Allow"
        ]
        assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
    # AND SNS may use the key to encrypt what it delivers to the encrypted queues
    key_policy = resources[template.DATA_KEY]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "sns.amazonaws.com"} for s in key_policy)


@pytest.mark.parametrize("rendered", ["sam_template", "stack_template", "dev"])
def test_every_subscribed_queue_takes_sns_deliveries_from_its_own_topic_only(
    rendered: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN a rendered template: the SAM path's, the chalice path's stack (local and AWS stage)
    if rendered == "dev":
        resources = template.render(Deployment(load_stage("dev"), DeployPath.CHALICE))["Resources"]
    else:
        resources = request.getfixturevalue(rendered)["Resources"]
    policies = {
        policy["Queues"][0]["Ref"]: policy["PolicyDocument"]["Statement"]
        for policy in _of_type(resources, "AWS::SQS::QueuePolicy").values()
    }
    subscriptions = [
        s for s in _of_type(resources, "AWS::SNS::Subscription").values() if s["Protocol"] == "sqs"
    ]
    assert len(subscriptions) == len(SUBSCRIPTIONS)
    for subscription in subscriptions:
        queue = subscription["Endpoint"]["Fn::GetAtt"][0]
        from_sns = {
            s["Effect"]: s
            for s in policies[queue]
            if s.get("Principal") == {"Service": "sns.amazonaws.com"}
        }
        # THEN SNS may send to the queue on behalf of the subscribed topic, and is denied for
        # any other topic (aws:SourceArn), whatever else a policy may allow
        own_topic = {"aws:SourceArn": subscription["TopicArn"]}
        assert from_sns["Allow"]["Condition"] == {"ArnEquals": own_topic}
        assert from_sns["Deny"]["Condition"] == {"ArnNotEquals": own_topic}
        for statement in from_sns.values():
            assert statement["Action"] == "sqs:SendMessage"
            assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}


@pytest.mark.parametrize(
    ("stage", "protected"), [("dev", True), ("local", False), ("local-b", False)]
)
def test_tables_have_recovery_and_deletion_protection_on_aws_stages_only(
    stage: str, protected: bool
) -> None:
    # Local stages are torn down and deployed again all day: protection would block teardown.
    resources = template.render(Deployment(load_stage(stage), DeployPath.CHALICE))["Resources"]
    for table in _of_type(resources, "AWS::DynamoDB::Table").values():
        assert table["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": protected
        }
        assert table["DeletionProtectionEnabled"] is protected


def test_the_sam_api_is_traced_like_the_one_chalice_deploys(sam_template: dict[str, Any]) -> None:
    # `chalice deploy` enables X-Ray on the API stage; `chalice package` needs the override.
    assert sam_template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_the_sam_api_is_throttled_as_its_stage_says(sam_template: dict[str, Any]) -> None:
    # Every route of the stage: requests over the rate are answered 429 before a function runs.
    (setting,) = sam_template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    throttling = LOCAL.api_throttling
    assert setting["ThrottlingRateLimit"] == throttling.rate_per_second
    assert setting["ThrottlingBurstLimit"] == throttling.burst


def test_functions_may_use_the_key_only_through_the_services_they_call() -> None:
    resources = template.render(CHALICE_PATH)["Resources"]
    for function in template.FUNCTIONS:
        policies = resources[template.role_id(function)]["Properties"]["Policies"]
        statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
        actions = {a for s in statements for a in s["Action"]}
        (key,) = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
        assert key["Resource"] == DATA_KEY_ARN
        assert set(key["Action"]) <= {"kms:GenerateDataKey", "kms:Decrypt"}
        via = key["Condition"]["StringEquals"]["kms:ViaService"]
        services = {v["Fn::Sub"].removesuffix(".${AWS::Region}.amazonaws.com") for v in via}
        called = {a.split(":")[0] for a in actions} & {"dynamodb", "sns", "sqs"}
        assert services == called, function
    # AND the state machine, which only invokes functions, has no use for it
    order_flow = json.dumps(resources["OrderFlowRole"])
    assert "kms:" not in order_flow


# --- nothing stuck: alarms and the state machine's logs (both paths: see the parity test) ---


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_every_dead_letter_queue_every_unsuccessful_execution_and_a_late_relay_raise_an_alarm(
    stage: str,
) -> None:
    resources = template.render(Deployment(load_stage(stage), DeployPath.CHALICE))["Resources"]
    alarms = list(_of_type(resources, "AWS::CloudWatch::Alarm").values())
    # GIVEN the alarms, each to the alarm topic, quiet while nothing is reported
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": template.ALARM_TOPIC}]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # AND the outbox relay's: over a minute behind the table's stream (every other: any value)
    (relay,) = [alarm for alarm in alarms if alarm["MetricName"] == "IteratorAge"]
    assert relay["Dimensions"] == [
        {"Name": "FunctionName", "Value": f"orders-{stage}-{template.RELAY}"}
    ]
    assert (relay["Statistic"], relay["Threshold"]) == ("Maximum", 60_000)
    assert all(alarm["Threshold"] == 0 for alarm in alarms if alarm is not relay)
    # THEN each dead-letter queue has one on the messages waiting in it
    watched_queues = [
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in alarms
        if alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    ]
    dead_letter_queues = [template.dead_letter_queue_id(s) for s in SUBSCRIPTIONS]
    assert sorted(watched_queues) == sorted([*dead_letter_queues, template.RELAY_DEAD_LETTERS])
    # AND the state machine one per way an execution can end without succeeding
    execution_metrics = {
        alarm["MetricName"]
        for alarm in alarms
        if alarm["Namespace"] == "AWS/States"
        and alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "OrderFlow"}}]
    }
    assert execution_metrics == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    # + the relay's: behind the stream, and its dead letters
    assert len(alarms) == len(SUBSCRIPTIONS) + len(execution_metrics) + 2


def test_cloudwatch_may_publish_to_the_alarm_topic_and_use_its_key() -> None:
    resources = template.render(CHALICE_PATH)["Resources"]
    topic_policy = resources[f"{template.ALARM_TOPIC}Policy"]["Properties"]["PolicyDocument"]
    (allow,) = [s for s in topic_policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    key_policy = resources[template.DATA_KEY]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key_policy)


def test_the_state_machine_logs_its_errors_without_order_data_to_a_kept_encrypted_group() -> None:
    resources = template.render(CHALICE_PATH)["Resources"]
    logging = resources["OrderFlow"]["Properties"]["LoggingConfiguration"]
    assert logging["Level"] in ("ERROR", "ALL")
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = resources[group_id]["Properties"]
    assert group["RetentionInDays"] > 0
    assert group["KmsKeyId"] == DATA_KEY_ARN
    # AND CloudWatch Logs may use the key for that group only
    key_policy = resources[template.DATA_KEY]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in key_policy if "logs." in json.dumps(s["Principal"])]
    context = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert context.endswith(f":log-group:{group['LogGroupName']}")
