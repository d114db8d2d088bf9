"""The switch itself: an injector, and the order repository and notifier behind it.

Imports the orders app (``chalicelib``), so it is imported only by ``attach()`` in a process
that names the switch's parameter, and by the tests; see ``__init__.py`` for what the switch does.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from chalicelib import bootstrap
from chalicelib.orders.access import Principal
from chalicelib.orders.errors import DependencyUnavailableError
from chalicelib.orders.events import Event
from chalicelib.orders.model import Order, OrderStatus
from chalicelib.orders.tellings import Telling
from chalicelib.ports import Notifier, OrderRepository, OrderSummary, Ports
from chalicelib.tracing import logger

from . import FaultSettings
from .ssm_settings import SsmFaultSettings, host_copy

T = TypeVar("T")


def attach_switch(parameter: str) -> None:
    """From now on this process's ports obey the switch stored in SSM ``parameter``."""

    def with_faults(ports: Ports, client: Callable[[str], Any]) -> Ports:
        # Sits between the steps and the orders table and the notifier; reads its parameter
        # on use (functions that neither write orders nor tell anyone never read it).
        injector = FaultInjector(
            SsmFaultSettings(
                parameter,
                client("ssm"),
                refresh_in_background=True,
                shared=host_copy(parameter),
            ),
            service=bootstrap.recorder(),
        )
        return dataclasses.replace(
            ports,
            orders=OrdersWithFaults(ports.orders, injector),
            notifier=NotifierWithFaults(ports.notifier, injector),
        )

    bootstrap.wrap_ports(with_faults)


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
        answered_at: datetime | None = None,
        callback_token: str | None = None,
    ) -> None:
        self._faults.around(
            f"append {event.type.value}",
            order.order_id,
            lambda: self._inner.append(
                order, event, previous_status, tellings, answered_at, callback_token
            ),
            write=True,
        )

    def record_decision(self, order: Order, answered_at: datetime) -> None:
        self._faults.around(
            "record_decision",
            order.order_id,
            lambda: self._inner.record_decision(order, answered_at),
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

    def in_flight(self, limit: int) -> int:
        return self._inner.in_flight(limit)

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
