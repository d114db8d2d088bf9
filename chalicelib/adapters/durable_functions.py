"""The order-flow durable function as the orders API's Workflow port (Lambda's durable
execution API: Invoke with a DurableExecutionName, SendDurableExecutionCallbackSuccess,
ListDurableExecutionsByFunction, GetDurableExecutionHistory).

On a local stage the durable execution API is AWS's local runner (``dex-local-runner``,
``localdev/durable_runner.py``), which the Lambda client reaches through
``AWS_ENDPOINT_URL_LAMBDA``; the runner starts an execution through its own route, not
Lambda's Invoke, so a local stage configures that route (``runner_endpoint``)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.error import URLError

from botocore.exceptions import ClientError

from chalicelib.adapters.hand_over import hand_over
from chalicelib.orders.errors import DependencyUnavailableError
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


# The runner's start route wants what Lambda takes from the function's DurableConfig.
RUNNER_ACCOUNT = "000000000000"
RUNNER_RETENTION_DAYS = 1


def execution_timeout_seconds(restaurant_deadline: int, delivery_deadline: int) -> int:
    """An execution outlives both waits with room for the retries between them."""
    return 2 * (restaurant_deadline + delivery_deadline)


class DurableFunctionWorkflow(Workflow):
    """``client``: a boto3 Lambda client whose botocore knows the durable execution API.
    ``runner_endpoint``: set on a local stage only, the local runner whose start route starts
    an execution; unset, Lambda's Invoke with a DurableExecutionName does."""

    def __init__(
        self,
        function_name: str,
        client: Any,
        restaurant_deadline_seconds: int,
        delivery_deadline_seconds: int,
        runner_endpoint: str | None = None,
    ) -> None:
        self._function = function_name
        self._client = client
        self._restaurant_deadline = restaurant_deadline_seconds
        self._delivery_deadline = delivery_deadline_seconds
        self._runner = runner_endpoint

    def start(self, order_id: str) -> None:
        payload = json.dumps(
            {
                "order_id": order_id,
                "restaurant_deadline_seconds": self._restaurant_deadline,
                "delivery_deadline_seconds": self._delivery_deadline,
                "trace_header": onward_trace_header() or "",
            }
        )
        if self._runner is not None:
            self._start_at_runner(order_id, payload)
            return
        try:
            self._client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                # Named after the order: starting twice cannot run the flow twice.
                DurableExecutionName=order_id,
                Payload=payload,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "DurableExecutionAlreadyStartedException":
                raise

    def _start_at_runner(self, order_id: str, payload: str) -> None:
        """The runner's ``POST /start-durable-execution``. Unlike Lambda it does not refuse a
        second execution of one name, so a started one is looked for first (a relay that
        retries after starting); two relays at once could still start two (docs/durable.md)."""
        if self._execution(order_id) is not None:
            return
        start = {
            "AccountId": RUNNER_ACCOUNT,
            "FunctionName": self._function,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": order_id,
            "ExecutionTimeoutSeconds": execution_timeout_seconds(
                self._restaurant_deadline, self._delivery_deadline
            ),
            "ExecutionRetentionPeriodDays": RUNNER_RETENTION_DAYS,
            "Input": payload,
        }
        request = urllib.request.Request(
            f"{self._runner}/start-durable-execution",
            data=json.dumps(start).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (URLError, OSError) as error:
            message = f"starting at the durable runner failed: {error}"
            raise DependencyUnavailableError(message) from error

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
