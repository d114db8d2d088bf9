"""The fault switch: transient failures injected into the ports the steps use, on purpose.

A test instrument of local stages, never in a deployment package. A fault run
(``python -m tools.fault_run``) turns it on through the deployment's SSM parameter
``/<prefix>/faults`` (``{"step_fault_rate": 0.1}``); the deploy creates the parameter off, and
names it in the functions' environment (``ORDERS_FAULTS_PARAMETER``), on local stages only
(``deploy.template.has_fault_switch``). While the rate is above zero, each write of the order
repository and each telling of the notifier fails at that rate, half the time before the call
(nothing happened) and half the time right after it succeeded (a crash after the write: the
caller never learns it happened). The failure is a ``DependencyUnavailableError``, what the
system already treats as transient: the API answers 503 (the client retries), a choreography
message fails and is redelivered, the relay's stream record is retried, a state machine task is
retried by its ``Retry`` (which names the class, so it must be exactly that class).

How it gets in front of the ports: the local cloud's Lambda executor runs ``attach()`` in every
function process before the handler is imported (``LOCALCLOUD_FUNCTION_HOOK``, set by
``localcloud/server.py``); where the environment names the parameter, it registers the switch
with ``chalicelib.bootstrap.wrap_ports``. The executor loads this package from its folder under
a name of its own, so it imports its own modules relatively, and only the standard library
until ``attach()`` finds the parameter named: it runs in every function on the local cloud,
most of which have no ``chalicelib``. (``chalice local``, which serves ``make run``'s API, has
no switch: a fault run goes through the deployed API.)

Off, it costs one look at a cached value per write, and the reads of the parameter, which are
off the invocations' path while a process is in use: its own thread reads it again every 3/4 of
``MAX_AGE_SECONDS`` until ``KEEP_FRESH_SECONDS`` after its last use, and the processes of the host
share each read through a file (``ssm_settings.host_copy``), so the host makes about one
``GetParameter`` per 1.5 s while orders flow, whatever the number of function processes (before:
each process read it on the invocation that found it 2 s old, about once per order and process at
one customer). A process idle longer, or new, reads it on its next use. A change reaches every
function within ``MAX_AGE_SECONDS`` either way. AWS stages have no switch, so none of this.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

# The environment variable naming the switch's SSM parameter (set on local stages only).
FAULTS_PARAMETER = "ORDERS_FAULTS_PARAMETER"
# How long a process keeps the switch it read: a change reaches every function within this
# (the fault run and the outbox tests wait that long after each change; a local stage only).
MAX_AGE_SECONDS = 2
# How long after its last use a process keeps the switch fresh in the background (ssm_settings.py),
# so that no invocation of a process in use waits for the read: longer than a function's gaps
# between invocations while orders flow one at a time (2-4 s), short enough that an idle process
# soon stops reading.
KEEP_FRESH_SECONDS = 10
OFF: dict[str, Any] = {"step_fault_rate": 0.0}
# Names the folder of a profiling run: the hook attaches the step profiler (profiling.py) too.
PROFILE_DIR = "ORDERS_PROFILE_DIR"


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


def attach() -> bool:
    """Puts the switch in front of this process's ports if its environment names the switch's
    parameter; returns whether it did. Call it before the first request."""
    if folder := os.environ.get(PROFILE_DIR):
        # A profiling run (tools/profile_steps.py) asked for the step profiler too.
        from .profiling import attach_profiler

        attach_profiler(folder)
    parameter = os.environ.get(FAULTS_PARAMETER)
    if not parameter:
        return False
    # Here, not at the top: only a process of the orders app names the parameter.
    from .switch import attach_switch

    attach_switch(parameter)
    return True
