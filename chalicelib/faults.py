"""The fault switch: transient failures injected into the ports the steps use, on purpose.

A fault run (``python -m tools.fault_run``) turns it on through the deployment's SSM parameter
``/<prefix>/faults`` (``{"step_fault_rate": 0.1}``); the deploy creates it off, on local
stages only (AWS stages have no switch: ``deploy.template.has_fault_switch``). While the rate
is above zero, each write of the order repository and each telling of the notifier fails at
that rate, half the time before the call (nothing happened) and half the time right after it
succeeded (a crash after the write: the caller never learns it happened). The failure is a
``DependencyUnavailableError``, what the system already treats as transient: the API answers
503 (the client retries), a choreography message fails and is redelivered, the relay's stream
record is retried, a state machine task is retried by its ``Retry`` (which names the class,
so it must be exactly that class).

Off, it costs one look at a cached value per write: the parameter is read at most once per
``MAX_AGE_SECONDS`` per process.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from chalicelib.orders.access import Principal
from chalicelib.orders.errors import DependencyUnavailableError
from chalicelib.orders.events import Event
from chalicelib.orders.model import Order, OrderStatus
from chalicelib.orders.tellings import Telling
from chalicelib.ports import Notifier, OrderRepository, OrderSummary
from chalicelib.tracing import logger

# How long a process keeps the switch it read: a change reaches every function within this.
MAX_AGE_SECONDS = 5
OFF: dict[str, Any] = {"step_fault_rate": 0.0}

T = TypeVar("T")


class InvalidFaultSettingsError(ValueError):
    """The parameter does not hold valid fault settings."""


@dataclass(frozen=True)
class FaultSettings:
    step_fault_rate: float = 0.0
    # Functions (by their Chalice names) that crash right after every order write succeeds:
    # the deterministic fault of the outbox's crash tests (tests/e2e/test_outbox.py).
    crash_after_write_in: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, document: Any) -> FaultSettings:
        """``{"step_fault_rate": r, "crash_after_write_in": [function, ...]}`` with
        0 <= r <= 1, both optional; anything else is refused, named."""
        if not isinstance(document, dict) or set(document) - {
            "step_fault_rate",
            "crash_after_write_in",
        }:
            raise InvalidFaultSettingsError(
                f'expected {{"step_fault_rate": <0..1>, "crash_after_write_in": [<function>]}}, '
                f"got {json.dumps(document)[:200]}"
            )
        crashing = document.get("crash_after_write_in", [])
        if not isinstance(crashing, list) or not all(isinstance(f, str) for f in crashing):
            raise InvalidFaultSettingsError(
                f"crash_after_write_in must be a list of function names, not {crashing!r}"
            )
        rate = document.get("step_fault_rate", 0.0)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0 <= rate <= 1
        ):
            raise InvalidFaultSettingsError(f"step_fault_rate must be within 0..1, not {rate!r}")
        return cls(step_fault_rate=float(rate), crash_after_write_in=frozenset(crashing))


class FaultInjector:
    """Decides, per call, whether to fail it, and when: before, or after it succeeded.

    ``settings``: the switch as it stands (read on every call, so it should be cached);
    ``chance``: uniform in [0, 1), injectable so tests choose what happens; ``service``: the
    function this process is (``crash_after_write_in`` names functions).
    """

    def __init__(
        self,
        settings: Callable[[], FaultSettings],
        chance: Callable[[], float] = random.random,
        service: str = "",
    ) -> None:
        self._settings = settings
        self._chance = chance
        self._service = service

    def around(self, what: str, order_id: str, call: Callable[[], T], write: bool = False) -> T:
        """``call``, or a fault; ``write``: an order write, which crash_after_write_in crashes."""
        settings = self._settings()
        if write and self._service in settings.crash_after_write_in:
            call()
            raise self._injected(what, order_id, "after")
        rate = settings.step_fault_rate
        if rate <= 0 or self._chance() >= rate:
            return call()
        if self._chance() < 0.5:
            raise self._injected(what, order_id, "before")
        call()  # it happens; its caller never learns so
        raise self._injected(what, order_id, "after")

    @staticmethod
    def _injected(what: str, order_id: str, when: str) -> DependencyUnavailableError:
        # Logged so a fault run's failures can be told apart from real ones.
        logger.warning("injected fault", extra={"order_id": order_id, "call": what, "fault": when})
        happened = "after it succeeded" if when == "after" else "before it ran"
        return DependencyUnavailableError(f"injected fault: {what} of order {order_id} {happened}")


class OrdersWithFaults(OrderRepository):
    """The order repository whose writes fail at the switch's rate; reads are untouched."""

    def __init__(self, inner: OrderRepository, faults: FaultInjector) -> None:
        self._inner = inner
        self._faults = faults

    def add(self, order: Order, idempotency_key: str | None = None) -> None:
        self._faults.around(
            "add", order.order_id, lambda: self._inner.add(order, idempotency_key), write=True
        )

    def order_id_for_key(self, customer_id: str, idempotency_key: str) -> str | None:
        return self._inner.order_id_for_key(customer_id, idempotency_key)

    def get(self, order_id: str) -> Order:
        return self._inner.get(order_id)

    def append(
        self,
        order: Order,
        event: Event,
        previous_status: OrderStatus,
        tellings: Sequence[Telling] = (),
    ) -> None:
        self._faults.around(
            f"append {event.type.value}",
            order.order_id,
            lambda: self._inner.append(order, event, previous_status, tellings),
            write=True,
        )

    def record_decision(self, order: Order) -> None:
        self._faults.around(
            "record_decision",
            order.order_id,
            lambda: self._inner.record_decision(order),
            write=True,
        )

    def save_callback_token(self, order_id: str, token: str) -> None:
        self._faults.around(
            "save_callback_token",
            order_id,
            lambda: self._inner.save_callback_token(order_id, token),
        )

    def recent_for(self, principal: Principal, limit: int) -> list[OrderSummary]:
        return self._inner.recent_for(principal, limit)

    def overdue(self, now: datetime, limit: int) -> list[str]:
        return self._inner.overdue(now, limit)

    def reschedule(self, order: Order) -> None:
        # Bookkeeping for the sweeper, not a change of the order: no crash after it.
        self._faults.around("reschedule", order.order_id, lambda: self._inner.reschedule(order))


class NotifierWithFaults(Notifier):
    """The notifier whose tellings fail at the switch's rate (before, or after telling)."""

    def __init__(self, inner: Notifier, faults: FaultInjector) -> None:
        self._inner = inner
        self._faults = faults

    def tell(self, telling: Telling) -> None:
        self._faults.around(
            f"tell {telling.audience} {telling.subject}",
            telling.order_id,
            lambda: self._inner.tell(telling),
        )
