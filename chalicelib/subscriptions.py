"""Who listens to which order events: the choreography's wiring, as data.

The deploy creates one SQS queue (with a dead-letter queue) per subscription and
subscribes it to the order-events topic with ``filter_policy()``; each handler
checks what it receives against the same subscription.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.orders.events import EventType
from chalicelib.orders.model import Flow
from chalicelib.settings import queue_name


@dataclass(frozen=True)
class Subscription:
    service: str
    event_types: frozenset[EventType]
    flows: frozenset[Flow]
    # Delivered only after the restaurant's deadline (the queue's delivery delay).
    delayed_until_deadline: bool = False

    def queue_for(self, resource_prefix: str) -> str:
        """The queue of the deployment with this resource prefix."""
        return queue_name(self.service, resource_prefix)

    def wants(self, event_type: EventType, flow: str) -> bool:
        return event_type in self.event_types and flow in {f.value for f in self.flows}

    def filter_policy(self) -> dict[str, list[str]]:
        return {
            "type": sorted(t.value for t in self.event_types),
            "flow": sorted(f.value for f in self.flows),
        }


CHOREOGRAPHY_ONLY = frozenset({Flow.CHOREOGRAPHY})

RESTAURANT_NOTIFIER = Subscription(
    "restaurant-notifier", frozenset({EventType.ORDER_PLACED}), CHOREOGRAPHY_ONLY
)
RESTAURANT_DEADLINE = Subscription(
    "restaurant-deadline",
    frozenset({EventType.ORDER_PLACED}),
    CHOREOGRAPHY_ONLY,
    delayed_until_deadline=True,
)
USER_NOTIFIER = Subscription(
    "user-notifier",
    frozenset({EventType.ORDER_ACCEPTED, EventType.ORDER_REJECTED, EventType.ORDER_CANCELLED}),
    CHOREOGRAPHY_ONLY,
)
# Another bounded context: it builds on order_completed whoever coordinated the order.
PROMOTIONS = Subscription("promotions", frozenset({EventType.ORDER_COMPLETED}), frozenset(Flow))

SUBSCRIPTIONS = (RESTAURANT_NOTIFIER, RESTAURANT_DEADLINE, USER_NOTIFIER, PROMOTIONS)
