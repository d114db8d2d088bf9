"""The decision that settles an order awaiting its restaurant: accepted, rejected or cancelled.

Whoever answers first (the restaurant accepting or rejecting, the customer cancelling, the
deadline cancelling) decides; the decision is recorded on the order by a conditional write
before anyone is told it was taken, and every later different answer is refused naming it.

A ``Decision`` is its ``outcome`` and, for a rejection or cancellation, its ``reason``. The
outcome's value is the one word every interface uses: the API's ``decision.outcome``,
``user_notified``'s ``outcome``, the stored ``decision`` and the ``decision`` the state
machine's RestaurantDecision state reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.orders.events import Event, EventType


class Outcome(StrEnum):
    """What was decided."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# The event that carries out each outcome, and back.
OUTCOME_EVENTS = {
    Outcome.ACCEPTED: EventType.ORDER_ACCEPTED,
    Outcome.REJECTED: EventType.ORDER_REJECTED,
    Outcome.CANCELLED: EventType.ORDER_CANCELLED,
}
EVENT_OUTCOMES = {event_type: outcome for outcome, event_type in OUTCOME_EVENTS.items()}
# The reason of a rejection whose restaurant gave none (carrying it out needs one).
NO_REASON = "not given"


@dataclass(frozen=True)
class Decision:
    """The decision that settles an order awaiting its restaurant (the first answer wins)."""

    outcome: Outcome
    # Why: the restaurant's reason for a rejection, the cancel reason (customer_request, ...).
    reason: str | None = None

    @classmethod
    def of(cls, event: Event) -> Decision | None:
        """The decision a decision event (accepted, rejected, cancelled) carries out; else None."""
        outcome = EVENT_OUTCOMES.get(event.type)
        if outcome is None:
            return None
        reason = event.data.get("reason")
        return cls(outcome, reason if isinstance(reason, str) else None)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value} | ({"reason": self.reason} if self.reason else {})
