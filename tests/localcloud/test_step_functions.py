"""Step Functions tasks that invoke functions, including a `.waitForTaskToken` callback."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.testing import LocalCloud, wait_for
from tests.localcloud.cloud_helpers import ROLE_ARN, DeployedFunction, receive_json, unique_name

pytestmark = pytest.mark.localcloud

Deploy = Callable[..., DeployedFunction]


@pytest.fixture
def make_state_machine(local_cloud: LocalCloud) -> Any:
    sfn = local_cloud.client("stepfunctions")
    created: list[str] = []

    def make(definition: dict[str, Any]) -> str:
        arn: str = sfn.create_state_machine(
            name=unique_name("lc-flow"), definition=json.dumps(definition), roleArn=ROLE_ARN
        )["stateMachineArn"]
        created.append(arn)
        return arn

    yield make
    for arn in created:
        sfn.delete_state_machine(stateMachineArn=arn)


def finished_execution(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        execution = sfn.describe_execution(executionArn=execution_arn)
        return None if execution["status"] == "RUNNING" else execution

    result: dict[str, Any] = wait_for(done, timeout=timeout, message="execution to finish")
    return result


def test_task_invokes_the_function_and_uses_its_result(
    local_cloud: LocalCloud, deploy_function: Deploy, make_state_machine: Any
) -> None:
    sfn = local_cloud.client("stepfunctions")
    function = deploy_function("echo")
    machine = make_state_machine(
        {
            "StartAt": "Echo",
            "States": {
                "Echo": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function.arn, "Payload.$": "$"},
                    "ResultSelector": {"echoed.$": "$.Payload.event"},
                    "End": True,
                }
            },
        }
    )

    execution = sfn.start_execution(stateMachineArn=machine, input='{"order_id": "o-7"}')
    finished = finished_execution(sfn, execution["executionArn"])

    assert finished["status"] == "SUCCEEDED", finished
    assert json.loads(finished["output"]) == {"echoed": {"order_id": "o-7"}}


def test_function_error_is_caught_by_name(
    local_cloud: LocalCloud, deploy_function: Deploy, make_state_machine: Any
) -> None:
    sfn = local_cloud.client("stepfunctions")
    function = deploy_function("failing")
    machine = make_state_machine(
        {
            "StartAt": "Reject",
            "States": {
                "Reject": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function.arn, "Payload.$": "$"},
                    "Catch": [
                        {
                            "ErrorEquals": ["OrderRejectedError"],
                            "Next": "Rejected",
                            "ResultPath": "$.error",
                        }
                    ],
                    "End": True,
                },
                "Rejected": {"Type": "Pass", "End": True},
            },
        }
    )

    execution = sfn.start_execution(stateMachineArn=machine, input='{"order_id": "o-8"}')
    finished = finished_execution(sfn, execution["executionArn"])

    assert finished["status"] == "SUCCEEDED", finished
    error = json.loads(finished["output"])["error"]
    assert error["Error"] == "OrderRejectedError"
    assert json.loads(error["Cause"])["errorMessage"] == "order o-8 rejected"


def test_wait_for_task_token_resumes_on_send_task_success(
    local_cloud: LocalCloud,
    deploy_function: Deploy,
    make_state_machine: Any,
    sqs: Any,
    make_queue: Callable[..., str],
) -> None:
    # GIVEN a task that hands its token to a function and waits
    sfn = local_cloud.client("stepfunctions")
    tokens = make_queue("lc-tokens")
    function = deploy_function("task_token", environment={"RESULT_QUEUE_URL": tokens})
    machine = make_state_machine(
        {
            "StartAt": "AwaitRestaurant",
            "States": {
                "AwaitRestaurant": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": function.arn,
                        "Payload": {"order_id.$": "$.order_id", "token.$": "$$.Task.Token"},
                    },
                    "TimeoutSeconds": 60,
                    "End": True,
                }
            },
        }
    )
    execution = sfn.start_execution(stateMachineArn=machine, input='{"order_id": "o-9"}')

    # WHEN the token arrives and is answered with SendTaskSuccess
    handed_over = receive_json(sqs, tokens, until=lambda got: len(got) >= 1)[0]
    assert handed_over["order_id"] == "o-9"
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING"
    sfn.send_task_success(taskToken=handed_over["token"], output='{"accepted": true}')

    # THEN the execution resumes and ends with that output
    finished = finished_execution(sfn, execution["executionArn"])
    assert finished["status"] == "SUCCEEDED", finished
    assert json.loads(finished["output"]) == {"accepted": True}
