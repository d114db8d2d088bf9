"""The order-flow state machine as the orders API's Workflow port."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.orders.errors import WorkflowNotWaitingError
from chalicelib.orders.model import Order
from chalicelib.ports import Workflow

# What Step Functions answers when the token's state is no longer waiting.
TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class StepFunctionsWorkflow(Workflow):
    def __init__(
        self,
        state_machine_arn: str,
        client: Any,
        restaurant_deadline_seconds: int,
    ) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client
        self._restaurant_deadline = restaurant_deadline_seconds

    def start(self, order_id: str) -> None:
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                # Named after the order: starting twice cannot run the flow twice.
                name=order_id,
                input=json.dumps(
                    {
                        "order_id": order_id,
                        "restaurant_deadline_seconds": self._restaurant_deadline,
                    }
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def resume(self, order: Order, output: dict[str, Any]) -> None:
        if order.callback_token is None:
            raise WorkflowNotWaitingError(order.order_id, "no step is waiting yet; retry shortly")
        try:
            self._client.send_task_success(
                taskToken=order.callback_token, output=json.dumps(output)
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in TOKEN_GONE:
                raise WorkflowNotWaitingError(order.order_id, code) from None
            raise
