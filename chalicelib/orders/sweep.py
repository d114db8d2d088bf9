"""The sweeper's rules: what to do with an order found waiting past its deadline.

Each wait has an owner (``chalicelib/orders/deadlines.py``); the sweeper is the back-up of
every owner and the owner of the choreography's delivery deadline. It gives an owner a margin
past its deadline before it acts (the owner's own retries may still be on their way) except
where nobody else is left: its own deadline, and an orchestrated order whose execution ended
(the entry point leaves orders whose execution still runs to Step Functions). What it does
is the same steps the owners run, so whatever happens first, it happens once, and each step
it runs is recorded by the sweeper (the timeline shows who resumed or ended the order).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.orders import steps
from chalicelib.orders.deadlines import (
    MARGIN,
    Deadlines,
    delivery_due,
    due_at,
    restaurant_due,
    telling_due,
)
from chalicelib.orders.decision import NO_REASON, Decision, Outcome
from chalicelib.orders.model import AWAITING_RESTAURANT, Flow, Order
from chalicelib.ports import Ports


class SweepAction(StrEnum):
    # The restaurant's wait is over: the recorded answer, else cancel; carry it out, tell.
    SETTLE_AT_DEADLINE = "settle_at_deadline"
    TELL_CUSTOMER = "tell_customer"
    EXPIRE_DELIVERY = "expire_delivery"
    # Nothing to do now: store the order's deadline as it now is (none: stop watching it).
    RESCHEDULE = "reschedule"
    # Past its deadline, but its owner still has its margin.
    WAIT = "wait"


def next_action(order: Order, now: datetime, deadlines: Deadlines) -> SweepAction:
    """What the sweeper does with ``order`` at ``now`` (a pure rule; see the module)."""
    # Orchestration: called only once the execution ended, so nobody else will act.
    margin = MARGIN if order.flow is Flow.CHOREOGRAPHY else timedelta(0)
    awaiting = order.status in AWAITING_RESTAURANT
    if awaiting and now >= restaurant_due(order, deadlines) + margin:
        return SweepAction.SETTLE_AT_DEADLINE
    told_by = telling_due(order, deadlines)
    if told_by is not None and now >= told_by + margin:
        return SweepAction.TELL_CUSTOMER
    delivered_by = delivery_due(order, deadlines)
    if delivered_by is not None and now >= delivered_by:  # the sweeper owns it: no margin
        return SweepAction.EXPIRE_DELIVERY
    next_due = due_at(order, deadlines)
    if next_due is None or next_due > now:
        return SweepAction.RESCHEDULE
    return SweepAction.WAIT


def carry_out(action: SweepAction, order: Order, ports: Ports) -> None:
    """Run the steps ``action`` stands for on ``order`` (each is idempotent and conditional:
    an owner acting at the same moment makes this a repeat or a lost race, never a second
    effect)."""
    order_id = order.order_id
    if action is SweepAction.SETTLE_AT_DEADLINE:
        decision, _ = steps.settle_at_deadline(order_id, ports)
        _carry_out_decision(order_id, decision, ports)
        steps.notify_user(order_id, ports)
    elif action is SweepAction.TELL_CUSTOMER:
        steps.notify_user(order_id, ports)
    elif action is SweepAction.EXPIRE_DELIVERY:
        steps.expire_delivery(order_id, ports)
    elif action is SweepAction.RESCHEDULE:
        ports.orders.reschedule(order)


def _carry_out_decision(order_id: str, decision: Decision, ports: Ports) -> None:
    """Record the decision's event (a cancellation is recorded by settling already)."""
    if decision.outcome is Outcome.ACCEPTED:
        steps.accept_order(order_id, ports)
    elif decision.outcome is Outcome.REJECTED:
        steps.reject_order(order_id, decision.reason or NO_REASON, ports)
