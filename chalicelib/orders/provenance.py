"""Events are checked, not trusted: a consumed event must be one its order recorded.

Every event the system publishes is recorded in its order first (a step appends it, then
its caller publishes it), so the stored order is the authority on what really happened.
An event the order did not record, or recorded for another flow, was forged or misrouted:
a consumer refuses it instead of reacting to it.
"""

from __future__ import annotations

from chalicelib.orders.errors import UntrustedEventError
from chalicelib.orders.events import ENVELOPE_VERSION, Event
from chalicelib.orders.model import Order


def verify_recorded(event: Event, order: Order) -> None:
    """Return if ``order`` (as stored) recorded ``event``; else raise UntrustedEventError.

    Checked, in this order: the envelope version; that it is this order's event; the flow
    it claims against the order's flow; that the order's history holds an event with the
    same ``event_id`` and the same type. Only those fields are compared: reactions read
    everything else from the stored order, never from the event.
    """

    def refuse(reason: str) -> UntrustedEventError:
        return UntrustedEventError(event.order_id, event.event_id, reason)

    if event.version != ENVELOPE_VERSION:
        raise refuse(f"envelope version {event.version}, not {ENVELOPE_VERSION}")
    if event.order_id != order.order_id:
        raise refuse(f"it is about order {event.order_id}, not {order.order_id}")
    if event.flow != order.flow.value:
        raise refuse(f"it claims the {event.flow} flow; the order is {order.flow.value}")
    recorded = next((past for past in order.history if past.event_id == event.event_id), None)
    if recorded is None:
        raise refuse(f"the order recorded no event {event.event_id}")
    if recorded.type is not event.type:
        raise refuse(f"the order recorded {event.event_id} as {recorded.type.value}")
