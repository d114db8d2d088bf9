"""Admission: a new order is refused, clearly, while the system already has as many orders as
it can bring to their restaurants in good time.

The bound is on orders in flight: those the machine is moving in either flow, placed (their
restaurant not yet notified) or accepted (their customer not yet told). Those waits are the
machine's alone, so by Little's law the orders in them are the order rate times how long the
machine takes; bounding them bounds that time for every order accepted, and past saturation new
orders are refused with 503 and a Retry-After instead of being accepted and left to miss the
client's patience. Orders waiting for a person (the restaurant's answer, the delivery) are not
counted: they are not load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.orders.errors import OrderError
from chalicelib.orders.model import OrderStatus

IN_FLIGHT_STATUSES = frozenset({OrderStatus.PLACED, OrderStatus.ACCEPTED})


@dataclass(frozen=True)
class Admission:
    """The stage's bound on orders in flight, and when a refused client should try again."""

    orders_in_flight: int
    retry_after_seconds: int


class SaturatedError(OrderError):
    """As many orders are in flight as the stage admits: try again after ``retry_after``."""

    def __init__(self, in_flight: int, admission: Admission) -> None:
        super().__init__(
            f"{in_flight} orders are on their way to their restaurants, as many as this system "
            f"takes at once; place the order again in {admission.retry_after_seconds} s"
        )
        self.retry_after_seconds = admission.retry_after_seconds


def admit(in_flight: int, admission: Admission) -> None:
    """Raise SaturatedError unless one more order fits under the bound."""
    if in_flight >= admission.orders_in_flight:
        raise SaturatedError(in_flight, admission)


# How long an API container reuses a count that reached the bound, instead of counting again for
# each placement in a burst of them (on the local cloud a count is half a refusal's cost). Only a
# refusal is reused, never an admission, so the bound is never exceeded because of it; a slot that
# frees is seen at most this late, well within the Retry-After the refused clients were given.
SATURATED_COUNT_REUSE_SECONDS = 1.0


class SaturationMemory:
    """Remembers, in one process, a count of orders in flight that reached the bound, for at most
    ``reuse_seconds`` of ``clock`` (a monotonic clock in seconds)."""

    def __init__(
        self,
        clock: Callable[[], float],
        reuse_seconds: float = SATURATED_COUNT_REUSE_SECONDS,
    ) -> None:
        self._clock = clock
        self._reuse_seconds = reuse_seconds
        self._saturated: tuple[float, int] | None = None  # (counted at, count)

    def admit(self, count: Callable[[int], int], admission: Admission) -> None:
        """Raise SaturatedError if the bound was reached: as remembered, or counted now with
        ``count(limit)``."""
        now = self._clock()
        if self._saturated is not None:
            counted_at, in_flight = self._saturated
            if counted_at <= now < counted_at + self._reuse_seconds:
                raise SaturatedError(in_flight, admission)
            self._saturated = None
        in_flight = count(admission.orders_in_flight)
        try:
            admit(in_flight, admission)
        except SaturatedError:
            self._saturated = (now, in_flight)
            raise
