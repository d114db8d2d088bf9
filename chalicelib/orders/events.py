"""Order events: past-tense facts, one JSON envelope for every type."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ENVELOPE_VERSION = 1


class EventType(StrEnum):
    ORDER_PLACED = "order_placed"
    RESTAURANT_NOTIFIED = "restaurant_notified"
    ORDER_ACCEPTED = "order_accepted"
    ORDER_REJECTED = "order_rejected"
    USER_NOTIFIED = "user_notified"
    ORDER_COMPLETED = "order_completed"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_UNDELIVERED = "order_undelivered"


@dataclass(frozen=True)
class Event:
    """The envelope every order event travels in, on SNS, in SQS and in storage."""

    event_id: str
    type: EventType
    order_id: str
    flow: str
    occurred_at: str
    data: dict[str, Any] = field(default_factory=dict)
    version: int = ENVELOPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type.value,
            "version": self.version,
            "order_id": self.order_id,
            "flow": self.flow,
            "occurred_at": self.occurred_at,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        """Build an event from an already validated envelope."""
        return cls(
            event_id=raw["event_id"],
            type=EventType(raw["type"]),
            version=raw["version"],
            order_id=raw["order_id"],
            flow=raw["flow"],
            occurred_at=raw["occurred_at"],
            data=dict(raw["data"]),
        )
