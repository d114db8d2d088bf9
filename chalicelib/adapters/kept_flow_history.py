"""An order's workflow history for its timeline, read from Step Functions as little as it can be.

``GET /orders/{id}/timeline`` shows an orchestrated order's state transitions. Reading them is a
``GetExecutionHistory`` call, an account-wide quota of Step Functions (a small bucket, refilled a
few a second) that the workflow's own calls do not share but every timeline read would drain. So:
- an execution that has ended never changes: its transitions are kept in the orders table (item
  ``pk=FLOW_HISTORY#<order id>``; the relay skips it, it is no event) the first time they are
  read, and every later read takes them from there (also after Step Functions forgets the
  execution, 90 days after it closed);
- a running execution's transitions are read again at most every ``RUNNING_MAX_AGE_SECONDS`` in a
  container: a timeline polled while the order runs may miss its last second of transitions,
  never an event (those come from the order itself).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.orders.model import Order
from chalicelib.orders.timeline import StateTransition
from chalicelib.ports import Workflow

HISTORY_SK = "FLOW_HISTORY"
RUNNING_MAX_AGE_SECONDS = 2.0


def history_pk(order_id: str) -> str:
    return f"{HISTORY_SK}#{order_id}"


class KeptFlowHistory(Workflow):
    """The workflow, its transitions kept once its execution ended (and briefly while it runs)."""

    def __init__(self, workflow: Workflow, table_name: str, dynamodb: Any) -> None:
        self._workflow = workflow
        self._table = table_name
        self._dynamodb = dynamodb
        # Running executions' transitions, by order id: (read at, monotonic; transitions).
        self._recent: dict[str, tuple[float, list[StateTransition]]] = {}

    def transitions(self, order_id: str) -> list[StateTransition]:
        kept = self._kept(order_id)
        if kept is not None:
            return kept
        recent = self._recent.get(order_id)
        if recent is not None and time.monotonic() - recent[0] < RUNNING_MAX_AGE_SECONDS:
            return list(recent[1])
        transitions = self._workflow.transitions(order_id)
        if transitions and transitions[-1].ends_execution:
            self._keep(order_id, transitions)
            self._recent.pop(order_id, None)
        else:
            self._forget_stale()
            self._recent[order_id] = (time.monotonic(), transitions)
        return transitions

    def start(self, order_id: str) -> None:
        self._workflow.start(order_id)

    def is_running(self, order_id: str) -> bool:
        return self._workflow.is_running(order_id)

    def resume(self, order: Order, output: dict[str, Any]) -> None:
        self._workflow.resume(order, output)

    def _kept(self, order_id: str) -> list[StateTransition] | None:
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key={"pk": {"S": history_pk(order_id)}, "sk": {"S": HISTORY_SK}},
        ).get("Item")
        if item is None:
            return None
        return [
            StateTransition(at=datetime.fromisoformat(entry["at"]), step=entry["step"])
            for entry in json.loads(item["transitions"]["S"])
        ]

    def _keep(self, order_id: str, transitions: list[StateTransition]) -> None:
        entries = [{"at": t.at.isoformat(), "step": t.step} for t in transitions]
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": history_pk(order_id)},
                    "sk": {"S": HISTORY_SK},
                    "transitions": {"S": json.dumps(entries)},
                },
                # An ended history is final: a second reader's copy is the same one.
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _forget_stale(self) -> None:
        """Drop the running executions' copies too old to serve (a warm container stays small)."""
        now = time.monotonic()
        stale = [o for o, (at, _) in self._recent.items() if now - at >= RUNNING_MAX_AGE_SECONDS]
        for order_id in stale:
            del self._recent[order_id]
