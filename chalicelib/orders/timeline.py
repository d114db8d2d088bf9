"""An order's timeline: every step with its time, the service that took it, and the latency
since the order was placed and since the step before, in one shape for both flows.

Choreographed orders show the service that recorded each event (the API, or the
consumer that handled the event before it); orchestrated ones show the same and,
between them, the state machine's own state transitions from its execution history; durable
ones, the durable function's operations from its execution's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.orders.model import Flow, Order

STATE_MACHINE = "order-flow state machine"
DURABLE_FUNCTION = "order-flow durable function"
API = "orders API"


EXECUTION_STARTED = "execution started"


@dataclass(frozen=True)
class StateTransition:
    """One entry of a workflow's history: a state entered or exited, the execution started..."""

    at: datetime
    step: str  # e.g. "NotifyRestaurant entered", "execution succeeded"

    @property
    def ends_execution(self) -> bool:
        """The execution's last entry (succeeded, failed, timed out, aborted): after it the
        history never changes."""
        return self.step.startswith("execution ") and self.step != EXECUTION_STARTED


@dataclass(frozen=True)
class TimelineStep:
    at: datetime
    service: str
    step: str
    kind: str  # "event" (recorded in the order) or "state" (the workflow's history)
    event_id: str | None = None

    def to_dict(self, placed_at: datetime, previous_at: datetime) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": self.at.isoformat(timespec="milliseconds"),
            "service": self.service,
            "step": self.step,
            "kind": self.kind,
            "since_placed_ms": _milliseconds(self.at - placed_at),
            "since_previous_ms": _milliseconds(self.at - previous_at),
        }
        if self.event_id is not None:
            entry["event_id"] = self.event_id
        return entry


def service_of(recorder: str | None) -> str:
    """A recorder (the Chalice function that wrote the event) as the service it is."""
    if recorder in (None, "", "api_handler"):
        return API
    if recorder == "chalice_local":
        return f"{API} (chalice local)"
    return str(recorder)


def timeline(order: Order, transitions: list[StateTransition]) -> dict[str, Any]:
    """The order's steps in time order (events first when a transition has the same time)."""
    steps = [
        TimelineStep(
            at=datetime.fromisoformat(event.occurred_at),
            service=service_of(order.recorded_by.get(event.event_id)),
            step=event.type.value,
            kind="event",
            event_id=event.event_id,
        )
        for event in order.history
    ]
    workflow = DURABLE_FUNCTION if order.flow is Flow.DURABLE else STATE_MACHINE
    steps += [TimelineStep(t.at, workflow, t.step, "state") for t in transitions]
    steps.sort(key=lambda step: (step.at, step.kind != "event"))
    placed_at = datetime.fromisoformat(order.history[0].occurred_at)
    entries = []
    previous = placed_at
    for step in steps:
        entries.append(step.to_dict(placed_at, previous))
        previous = step.at
    return {
        "order_id": order.order_id,
        "flow": order.flow.value,
        "status": order.status.value,
        "placed_at": placed_at.isoformat(timespec="milliseconds"),
        "steps": entries,
    }


def _milliseconds(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)
