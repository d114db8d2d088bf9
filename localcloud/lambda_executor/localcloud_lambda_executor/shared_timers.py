"""An execution environment's keepalive and startup timers kept by one thread, not one each.

LocalStack 2026.3 starts a ``threading.Timer`` (a thread) every time an execution environment
finishes an invocation, to stop the environment once it has been idle ``LAMBDA_KEEPALIVE_MS``
(``services/lambda_/invocation/execution_environment.py``, ``release``), and cancels it when the
next invocation takes the environment (``reserve``): a thread started, woken and ended per
invocation, in the interpreter every invocation already goes through. Sampled with py-spy
(``--gil``) at 8 customers, ~3 % of LocalStack's CPU.

Here the module's ``Timer`` is one that puts its deadline on a heap kept by a single thread; a
timer that comes due uncancelled runs its function on a thread of its own, as LocalStack's did
(stopping an idle environment, or failing one that did not start in time, is rare and may take
a while). Cancelling a timer before it is due still keeps its function from running.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

_PATCHED = "_localcloud_shared_timer"
# Cancelled timers stay on the heap until they come due; past this many it is rebuilt without.
_PRUNE_AT = 10_000


class _Schedule:
    """Deadlines of the timers started and not yet due, in order, watched by one thread."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, SharedTimer]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, timer: SharedTimer) -> None:
        deadline = time.monotonic() + timer.interval
        with self._changed:
            if len(self._due) >= _PRUNE_AT:
                self._due = [entry for entry in self._due if not entry[2].cancelled]
                heapq.heapify(self._due)
            earliest = self._due[0][0] if self._due else None
            heapq.heappush(self._due, (deadline, next(self._order), timer))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lambda-shared-timers", daemon=True
                )
                self._thread.start()
            elif earliest is None or deadline < earliest:
                # Only a timer due before all the others changes how long the thread sleeps.
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                timer = heapq.heappop(self._due)[2]
            if not timer.cancelled:
                threading.Thread(target=timer.fire, name="lambda-timer", daemon=True).start()


_SCHEDULE = _Schedule()


class SharedTimer:
    """What LocalStack's execution environment uses of ``threading.Timer``: start, cancel."""

    def __init__(
        self,
        interval: float,
        function: Callable[..., Any],
        args: Any = None,
        kwargs: Any = None,
    ) -> None:
        self.interval = interval
        self.function = function
        self.args = args or ()
        self.kwargs = kwargs or {}
        self.cancelled = False

    def start(self) -> None:
        _SCHEDULE.add(self)

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.function(*self.args, **self.kwargs)


def install() -> None:
    """Give LocalStack's execution environments the shared timer."""
    from localstack.services.lambda_.invocation import execution_environment

    if getattr(execution_environment.Timer, _PATCHED, False):
        return
    setattr(SharedTimer, _PATCHED, True)
    execution_environment.Timer = SharedTimer
