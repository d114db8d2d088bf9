"""The order-flow durable function as the orders API's Workflow port (Lambda's durable
execution API: Invoke with a DurableExecutionName, SendDurableExecutionCallbackSuccess,
ListDurableExecutionsByFunction, GetDurableExecutionHistory)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.hand_over import hand_over
from chalicelib.orders.model import Order
from chalicelib.orders.timeline import EXECUTION_STARTED, StateTransition
from chalicelib.ports import Workflow
from chalicelib.tracing import onward_trace_header

# What Lambda answers when the callback no longer waits (timed out, or its execution ended).
CALLBACK_GONE = {"CallbackTimeoutException", "ResourceNotFoundException"}
# The durable operations a timeline shows: the flow's steps and waits, named in durable.py.
SHOWN = {"Step", "Callback", "Context"}
PHASES = {"Started": "entered", "Succeeded": "exited", "Failed": "exited", "TimedOut": "exited"}
ENDS = {
    "ExecutionSucceeded": "execution succeeded",
    "ExecutionFailed": "execution failed",
    "ExecutionTimedOut": "execution timed out",
    "ExecutionStopped": "execution aborted",
}


class DurableFunctionWorkflow(Workflow):
    """``client``: a boto3 Lambda client whose botocore knows the durable execution API."""

    def __init__(
        self,
        function_name: str,
        client: Any,
        restaurant_deadline_seconds: int,
        delivery_deadline_seconds: int,
    ) -> None:
        self._function = function_name
        self._client = client
        self._restaurant_deadline = restaurant_deadline_seconds
        self._delivery_deadline = delivery_deadline_seconds

    def start(self, order_id: str) -> None:
        try:
            self._client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                # Named after the order: starting twice cannot run the flow twice.
                DurableExecutionName=order_id,
                Payload=json.dumps(
                    {
                        "order_id": order_id,
                        "restaurant_deadline_seconds": self._restaurant_deadline,
                        "delivery_deadline_seconds": self._delivery_deadline,
                        "trace_header": onward_trace_header() or "",
                    }
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "DurableExecutionAlreadyStartedException":
                raise

    def resume(self, order: Order, output: dict[str, Any]) -> None:
        def send(callback_id: str) -> object:
            return self._client.send_durable_execution_callback_success(
                CallbackId=callback_id, Result=json.dumps(output).encode()
            )

        hand_over(order, send, CALLBACK_GONE, "SendDurableExecutionCallbackSuccess")

    def is_running(self, order_id: str) -> bool:
        execution = self._execution(order_id)
        return execution is not None and execution["Status"] in {"RUNNING", "PAUSING", "PAUSED"}

    def transitions(self, order_id: str) -> list[StateTransition]:
        execution = self._execution(order_id)
        if execution is None:
            return []
        found: list[StateTransition] = []
        request: dict[str, Any] = {
            "DurableExecutionArn": execution["DurableExecutionArn"],
            "IncludeExecutionData": False,
            "MaxItems": 1000,
        }
        while True:
            page = self._client.get_durable_execution_history(**request)
            found += [t for t in map(_transition, page["Events"]) if t is not None]
            if not page.get("NextMarker"):
                return found
            request["Marker"] = page["NextMarker"]

    def _execution(self, order_id: str) -> dict[str, Any] | None:
        page = self._client.list_durable_executions_by_function(
            FunctionName=self._function, DurableExecutionName=order_id, MaxItems=1
        )
        executions: list[dict[str, Any]] = page.get("DurableExecutions", [])
        return executions[0] if executions else None


def _transition(event: dict[str, Any]) -> StateTransition | None:
    """A history event as a step of the timeline: a named step's or wait's start and end."""
    kind: str = event["EventType"]
    at = event["EventTimestamp"]
    if kind == "ExecutionStarted":
        return StateTransition(at=at, step=EXECUTION_STARTED)
    if kind in ENDS:
        return StateTransition(at=at, step=ENDS[kind])
    name = event.get("Name")
    if not name or event.get("ParentId"):  # a wait's own parts: its wait shows it
        return None
    for phase, shown_as in PHASES.items():
        if kind.endswith(phase) and kind.removesuffix(phase) in SHOWN:
            return StateTransition(at=at, step=f"{name} {shown_as}")
    return None
