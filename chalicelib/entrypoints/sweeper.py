"""The sweeper: every minute, orders that waited past their deadline are resumed or ended.

It reads the orders still waiting whose deadline passed (a sparse index of the orders table,
``deadlines.due_at``) and runs what ``chalicelib/orders/sweep.py`` decides for each. An
orchestrated order whose execution still runs is left to Step Functions, which owns its
timeouts; one whose execution ended (a task's retries ran out, it was stopped) or never
started is taken over with the same steps. One order's failure does not stop the others:
it is logged and the next sweep tries it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.bootstrap import dependencies
from chalicelib.entrypoints.invocation import LambdaEvent
from chalicelib.orders.model import Flow, Order
from chalicelib.orders.sweep import SweepAction, carry_out, next_action
from chalicelib.tracing import FUNCTION_NAME, ORDER_KEYS, in_order_trace, logger, traced, work_on

# Orders looked at per run, at most; a run also stops while it has RESERVE_MS of its time left
# (its function's timeout), and the rest wait for the next run.
SWEEP_LIMIT = 500
RESERVE_MS = 2_000


def sweeper(event: LambdaEvent) -> dict[str, Any]:
    """One sweep; returns what it did per order (an invocation's answer, and its log)."""
    ports = dependencies().ports
    now = ports.clock()
    done: dict[str, str] = {}
    failed: dict[str, str] = {}
    for order_id in ports.orders.overdue(now, SWEEP_LIMIT):
        if _time_left_ms(event) < RESERVE_MS:
            break  # the next sweep takes the rest
        try:
            order = ports.orders.get(order_id)
            work_on(order_id, order.flow.value)
            with in_order_trace(order.trace_header, FUNCTION_NAME):
                done[order_id] = sweep_one(order, now)
        except Exception as error:  # noqa: BLE001 - one order's failure must not stop the sweep
            logger.exception("order not swept; the next sweep tries again")
            failed[order_id] = f"{type(error).__name__}: {error}"
        finally:
            logger.remove_keys(list(ORDER_KEYS))
    if done or failed:
        logger.info("sweep done", extra={"swept": done, "failed": failed})
    return {"swept": done, "failed": failed}


def sweep_one(order: Order, now: datetime) -> str:
    """What the sweep did with one overdue order (in the order's trace)."""
    ports = dependencies().ports
    workflow_runs = order.flow is not Flow.CHOREOGRAPHY
    if workflow_runs and dependencies().workflow_for(order.flow).is_running(order.order_id):
        return "left to its running execution"
    action = next_action(order, now, ports.deadlines)
    if action is not SweepAction.WAIT:
        with traced(f"sweep: {action.value}", order.order_id, order.flow.value):
            carry_out(action, order, ports)
    return action.value


def _time_left_ms(event: LambdaEvent) -> int:
    context = getattr(event, "context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else RESERVE_MS + 1  # no context: no limit
