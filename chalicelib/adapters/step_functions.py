"""The order-flow state machine as the orders API's Workflow port."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.hand_over import hand_over
from chalicelib.orders.model import Order
from chalicelib.orders.timeline import EXECUTION_STARTED, StateTransition
from chalicelib.ports import Workflow
from chalicelib.tracing import onward_trace_header

# What Step Functions answers when the token's state is no longer waiting.
TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class StepFunctionsWorkflow(Workflow):
    def __init__(
        self,
        state_machine_arn: str,
        client: Any,
        restaurant_deadline_seconds: int,
        delivery_deadline_seconds: int,
    ) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client
        self._restaurant_deadline = restaurant_deadline_seconds
        self._delivery_deadline = delivery_deadline_seconds

    def start(self, order_id: str) -> None:
        # The execution continues the placing request's trace: traceHeader in AWS; the input's
        # copy, which every task's payload carries, where Step Functions does not (locally).
        trace_header = onward_trace_header()
        continued = {"traceHeader": trace_header} if trace_header else {}
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                # Named after the order: starting twice cannot run the flow twice.
                name=order_id,
                input=json.dumps(
                    {
                        "order_id": order_id,
                        "restaurant_deadline_seconds": self._restaurant_deadline,
                        "delivery_deadline_seconds": self._delivery_deadline,
                        "trace_header": trace_header or "",
                    }
                ),
                **continued,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def resume(self, order: Order, output: dict[str, Any]) -> None:
        def send(token: str) -> object:
            return self._client.send_task_success(taskToken=token, output=json.dumps(output))

        hand_over(order, send, TOKEN_GONE, "SendTaskSuccess")

    def is_running(self, order_id: str) -> bool:
        try:
            execution = self._client.describe_execution(executionArn=self._execution_arn(order_id))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return False
            raise
        return bool(execution["status"] == "RUNNING")

    def _execution_arn(self, order_id: str) -> str:
        # The execution is named after the order (see start).
        return self._state_machine_arn.replace(":stateMachine:", ":execution:") + f":{order_id}"

    def transitions(self, order_id: str) -> list[StateTransition]:
        arn = self._execution_arn(order_id)
        found: list[StateTransition] = []
        request: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            try:
                page = self._client.get_execution_history(**request)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                    return []
                raise
            found += [t for t in map(_transition, page["events"]) if t is not None]
            if not page.get("nextToken"):
                return found
            request["nextToken"] = page["nextToken"]


EXECUTION_ENDS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}


def _transition(event: dict[str, Any]) -> StateTransition | None:
    """A history event as a step of the timeline; None for the ones it leaves out (task
    scheduling, Lambda start and success: the task state's entry and exit bound them)."""
    kind = event["type"]
    if kind.endswith("StateEntered"):
        step = f"{event['stateEnteredEventDetails']['name']} entered"
    elif kind.endswith("StateExited"):
        step = f"{event['stateExitedEventDetails']['name']} exited"
    elif kind == "ExecutionStarted":
        step = EXECUTION_STARTED
    elif kind in EXECUTION_ENDS:
        step = "execution " + kind.removeprefix("Execution").lower().replace(
            "timedout", "timed out"
        )
    else:
        return None
    return StateTransition(at=event["timestamp"], step=step)
