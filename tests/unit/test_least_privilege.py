"""Unit tests of the functions' IAM policies as declared in ``deploy/template.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy import template
from deploy.stages import Deployment, DeployPath, load_stage

DEPLOYMENT = Deployment(load_stage("local"), DeployPath.CHALICE)
RESOURCES = template.render(DEPLOYMENT)["Resources"]
# Where the AWS API has no resource-level permissions (each has its reason in template.py).
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "states:SendTaskSuccess",
    # Step Functions' logging to CloudWatch Logs, as AWS documents it for the state machine's role.
    *template.STATES_LOG_DELIVERY,
}


def statements(role_id: str) -> list[dict[str, Any]]:
    policies = RESOURCES[role_id]["Properties"]["Policies"]
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]


def actions_of(role_id: str) -> set[str]:
    return {action for s in statements(role_id) for action in s["Action"]}


ROLES = [template.role_id(f) for f in template.FUNCTIONS] + ["OrderFlowRole"]


@pytest.mark.parametrize("role_id", ROLES)
def test_no_wildcard_action_and_wildcard_resources_only_where_aws_has_no_other(
    role_id: str,
) -> None:
    for statement in statements(role_id):
        assert not any("*" in action for action in statement["Action"])
        if statement["Resource"] == "*" or "*" in json.dumps(statement["Resource"]).replace(
            ":*", ""
        ):
            assert set(statement["Action"]) <= NO_RESOURCE_LEVEL, statement


def test_each_function_has_its_own_role() -> None:
    assert len({template.role_id(f) for f in template.FUNCTIONS}) == len(template.FUNCTIONS)


def test_grants_are_listed_for_the_declared_functions_only() -> None:
    # chalicelib/functions.py declares the functions (and template.py the durable one, which
    # Chalice cannot); a function dropped there leaves no grant.
    assert set(template.GRANTS) == {*template.FUNCTIONS, template.DURABLE_FUNCTION}


def test_only_the_relay_starts_the_workflow_and_only_the_api_answers_it() -> None:
    for function in template.FUNCTIONS:
        actions = actions_of(template.role_id(function))
        assert ("states:StartExecution" in actions) == (function == template.RELAY)
        assert ("states:SendTaskSuccess" in actions) == (function == template.API_HANDLER)


def test_only_the_relay_publishes_order_events_and_only_it_reads_the_stream() -> None:
    """The outbox: whoever records an event cannot publish it; the relay reads what was recorded."""
    for function in template.FUNCTIONS:
        found = statements(template.role_id(function))
        publishes = any(s["Resource"] == {"Ref": "OrderEventsTopic"} for s in found)
        streams = any(s["Resource"] == {"Fn::GetAtt": ["OrdersTable", "StreamArn"]} for s in found)
        assert publishes == streams == (function == template.RELAY), function


def test_only_the_relay_tells_people() -> None:
    """The outbox again: a step stores its tellings with its event; only the relay sends them."""
    tellers = {
        f
        for f in template.FUNCTIONS
        if any(
            s["Resource"] == {"Ref": "NotificationsTopic"} for s in statements(template.role_id(f))
        )
    }
    assert tellers == {template.RELAY}


def test_promotions_touches_only_vouchers_and_its_own_queue_and_only_reads_orders() -> None:
    resources = [s["Resource"] for s in statements(template.role_id("promotions"))]
    assert {"Fn::GetAtt": ["VouchersTable", "Arn"]} in resources
    assert {"Fn::GetAtt": ["PromotionsQueue", "Arn"]} in resources
    # It checks events against the stored order, which it may read but never write.
    (orders,) = [
        s
        for s in statements(template.role_id("promotions"))
        if s["Resource"] == {"Fn::GetAtt": ["OrdersTable", "Arn"]}
    ]
    assert orders["Action"] == ["dynamodb:Query"]
    assert not any("sns:Publish" in s["Action"] for s in statements(template.role_id("promotions")))


def test_queue_consumers_read_only_their_own_queue() -> None:
    for function, subscription in template.QUEUE_HANDLERS.items():
        queues = [
            s["Resource"]["Fn::GetAtt"][0]
            for s in statements(template.role_id(function))
            if "sqs:ReceiveMessage" in s["Action"]
        ]
        assert queues == [template.queue_id(subscription)]


def test_only_the_deadline_checker_and_the_relay_send_to_a_queue_and_only_to_their_own() -> None:
    # The checker sends a message that came before the order's deadline back to its queue,
    # delayed; the relay's stream mapping sends what it failed on to the relay's dead letters
    # (Lambda sends with the function's role).
    senders = {
        function: [
            s["Resource"]["Fn::GetAtt"][0]
            for s in statements(template.role_id(function))
            if "sqs:SendMessage" in s["Action"]
        ]
        for function in template.FUNCTIONS
    }
    assert {f: queues for f, queues in senders.items() if queues} == {
        "restaurant_deadline_checker": ["RestaurantDeadlineQueue"],
        template.RELAY: [template.RELAY_DEAD_LETTERS],
    }


def test_the_state_machine_may_invoke_only_its_task_functions() -> None:
    (invoke,) = [s for s in statements("OrderFlowRole") if "lambda:InvokeFunction" in s["Action"]]
    names = sorted(arn["Fn::Sub"].rsplit(":", 1)[1] for arn in invoke["Resource"])
    expected = sorted(DEPLOYMENT.function_name(task) for task in template.TASK_FUNCTIONS)
    assert names == expected


def test_only_the_state_machine_may_set_up_log_delivery() -> None:
    # The log delivery actions take no narrower resource than "*": the one role that needs them
    # (the state machine logs to its own log group) has them, and no function.
    (delivery,) = [
        s for s in statements("OrderFlowRole") if "logs:CreateLogDelivery" in s["Action"]
    ]
    assert delivery["Action"] == template.STATES_LOG_DELIVERY
    for function in template.FUNCTIONS:
        assert not actions_of(template.role_id(function)) & set(template.STATES_LOG_DELIVERY)


@pytest.mark.parametrize("stage", ["local", "dev"])
def test_only_local_stages_have_a_fault_switch_and_its_readers_are_the_writers_and_teller(
    stage: str,
) -> None:
    """AWS stages neither read the switch (an SSM call per warm container) nor can be failed
    through it; on local stages exactly the functions that write orders or tell people do."""
    deployment = Deployment(load_stage(stage), DeployPath.SAM)
    rendered = template.render(deployment)["Resources"]
    local = deployment.stage.is_local
    assert ("FaultsParameter" in rendered) == local
    environment = template.function_environment(deployment)
    assert (template.faults.FAULTS_PARAMETER in environment) == local
    switch = f"parameter{template.faults_parameter_name(deployment)}"
    for function in template.FUNCTIONS:
        policies = rendered[template.role_id(function)]["Properties"]["Policies"]
        reads_switch = switch in json.dumps(policies)
        grants = template.GRANTS[function]
        obeys = template.write_orders in grants or template.notify_people in grants
        assert reads_switch == (local and obeys), (stage, function)


# The durable function: only on the SAM path (docs/durable.md).
DURABLE_SAM = Deployment(load_stage("dev"), DeployPath.SAM)
DURABLE_ACTIONS = {
    "lambda:InvokeFunction",
    "lambda:SendDurableExecutionCallbackSuccess",
    "lambda:ListDurableExecutionsByFunction",
    "lambda:GetDurableExecutionHistory",
    "lambda:CheckpointDurableExecution",
    "lambda:GetDurableExecutionState",
}


def durable_grants(deployment: Deployment, function: str) -> dict[str, Any]:
    """Each durable action the function's role allows, with the resources it allows it on."""
    role = template._function_role(deployment, function)
    found: dict[str, Any] = {}
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            for action in set(statement["Action"]) & DURABLE_ACTIONS:
                found[action] = statement["Resource"]
    return found


def test_only_the_relay_starts_the_durable_flow_and_only_the_api_answers_it() -> None:
    alias = template.durable_function_arn(DURABLE_SAM, ":live")
    everyone = [*template.FUNCTIONS, template.DURABLE_FUNCTION]
    granted = {function: durable_grants(DURABLE_SAM, function) for function in everyone}
    assert granted[template.RELAY] == {"lambda:InvokeFunction": alias}
    assert set(granted[template.API_HANDLER]) == {
        "lambda:SendDurableExecutionCallbackSuccess",
        "lambda:ListDurableExecutionsByFunction",
        "lambda:GetDurableExecutionHistory",
    }
    assert set(granted[template.SWEEPER]) == {"lambda:ListDurableExecutionsByFunction"}
    # The function checkpoints its own executions, and nothing else may.
    own = granted[template.DURABLE_FUNCTION]
    assert set(own) == {"lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"}
    assert json.dumps(own).count(template.durable_function_name(DURABLE_SAM)) == 4
    others = set(everyone) - {template.RELAY, template.API_HANDLER, template.SWEEPER}
    assert all(granted[f] == {} for f in others - {template.DURABLE_FUNCTION})


@pytest.mark.parametrize(
    ("stage", "path"),
    [("dev", DeployPath.CHALICE), ("local", DeployPath.CHALICE)],
)
def test_a_deployment_without_the_durable_function_grants_nothing_of_it(
    stage: str, path: DeployPath
) -> None:
    deployment = Deployment(load_stage(stage), path)
    assert not template.declares_durable_function(deployment)
    for function in template.FUNCTIONS:
        assert durable_grants(deployment, function) == {}
