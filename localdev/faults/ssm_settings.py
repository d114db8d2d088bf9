"""The fault switch as an SSM parameter, cached per process (see ``__init__.py``)."""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.tracing import logger

from . import KEEP_FRESH_SECONDS, MAX_AGE_SECONDS, FaultSettings, InvalidFaultSettingsError


def host_copy(parameter_name: str) -> Path:
    """Where the processes of this host share the switch they read: one file per local cloud
    (its endpoint) and parameter."""
    cloud = os.environ.get("AWS_ENDPOINT_URL", "")
    digest = hashlib.sha256(f"{cloud}\n{parameter_name}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"orders-fault-switch-{digest}.json"


class SsmFaultSettings:
    """The settings stored in ``parameter_name``, never older than ``max_age`` seconds when used.

    With ``refresh_in_background`` (what the functions use), while the process is in use (asked
    within ``keep_fresh_for`` seconds) a thread of its own reads the parameter again before what
    it read is ``max_age`` old, so an invocation finds it fresh and makes no call; a process idle
    longer reads it on its next use, on the invocation's path, as the bound demands. Either way a
    change reaches every function within ``max_age``. Without it, a use reads when it is due.
    ``shared``: a file where the processes of one host (the local cloud runs every function as
    a process of this host) keep what they read and when: a read younger than the age due is
    taken from there, so the host makes about one read per ``max_age * 3/4``, not one per
    process. Its time is ``clock``'s (``time.monotonic``: the same for every process of a host).

    The switch is a test instrument: if it cannot be read, or holds something invalid, orders
    go on with the settings last read (off at first), and the reason is logged as an error,
    once per read: a broken switch never stops the system it is testing.
    """

    def __init__(
        self,
        parameter_name: str,
        client: Any,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        keep_fresh_for: float = KEEP_FRESH_SECONDS,
        refresh_in_background: bool = False,
        shared: Path | None = None,
    ) -> None:
        self._name = parameter_name
        self._client = client
        self._max_age = max_age
        # Read again at 3/4 of the max age: a read that takes up to a quarter of it still lands
        # before an invocation would have to make its own.
        self._refresh_age = max_age * 0.75
        self._keep_fresh_for = keep_fresh_for
        self._clock = clock
        self._settings = FaultSettings()
        self._read_at: float | None = None
        self._used_at: float | None = None
        self._reading = threading.Lock()
        self._used = threading.Event()
        self._in_background = refresh_in_background
        self._refresher: threading.Thread | None = None
        self._shared = shared

    def __call__(self) -> FaultSettings:
        now = self._clock()
        self._used_at = now
        if self._read_at is None or now - self._read_at >= self._max_age:
            # Idle past the max age (or never read): the bound holds only if this use reads.
            with self._reading:
                self._read_unless_younger_than(self._max_age, self._client.get_parameter)
        if self._in_background:
            self._keep_fresh()
        return self._settings

    def refresh(self) -> float | None:
        """What the background thread does: reads the parameter again if the switch is in use
        and what was read is ``max_age * 3/4`` old; returns how long to wait before the next
        look, or None when the switch has not been used for ``keep_fresh_for`` (idle)."""
        if self._used_at is None or self._clock() - self._used_at >= self._keep_fresh_for:
            return None
        with self._reading:
            self._read_unless_younger_than(self._refresh_age, self._untraced_get_parameter)
            assert self._read_at is not None
            return max(0.0, self._read_at + self._refresh_age - self._clock())

    def _read_unless_younger_than(self, age: float, get_parameter: Callable[..., Any]) -> None:
        """Keeps what was read if it is younger than ``age``: this process's read, or another's
        on this host (``shared``); else reads the parameter, and shares what it read."""
        if self._read_at is not None and self._clock() - self._read_at < age:
            return
        with self._host_turn():
            if self._adopt_shared(age):
                return
            self._read_at = self._clock()
            read = self._read(get_parameter)
            if read is not None:
                self._settings = read
                self._share()

    @contextmanager
    def _host_turn(self) -> Iterator[None]:
        """One process of the host at a time looks at the shared read and reads if it is old:
        the processes that took the same read look again at the same moment, and without turns
        would all read then."""
        if self._shared is None:
            yield
            return
        with open(self._shared.with_name(f"{self._shared.name}.lock"), "a") as turn:
            fcntl.flock(turn, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _adopt_shared(self, age: float) -> bool:
        if self._shared is None:
            return False
        try:
            kept = json.loads(self._shared.read_text())
            read_at, settings = float(kept["read_at"]), FaultSettings.parse(kept["settings"])
        except (OSError, ValueError, KeyError, TypeError):
            return False  # none yet, or being replaced: read the parameter
        if not 0 <= self._clock() - read_at < age:  # old, or from before the host restarted
            return False
        self._read_at, self._settings = read_at, settings
        return True

    def _share(self) -> None:
        if self._shared is None:
            return
        kept = {
            "read_at": self._read_at,
            "settings": {
                "step_fault_rate": self._settings.step_fault_rate,
                "crash_after_write_in": sorted(self._settings.crash_after_write_in),
            },
        }
        # Written aside, then renamed over: a reader sees the old copy or the new, whole.
        aside = self._shared.with_name(f"{self._shared.name}.{os.getpid()}")
        try:
            aside.write_text(json.dumps(kept))
            os.replace(aside, self._shared)
        except OSError as error:  # the processes read the parameter each, as without it
            logger.warning(f"fault switch: cannot share what was read: {error}")

    def _keep_fresh(self) -> None:
        self._used.set()
        if self._refresher is None:
            self._refresher = threading.Thread(
                target=self._refresh_while_used, name="fault-switch", daemon=True
            )
            self._refresher.start()

    def _refresh_while_used(self) -> None:
        while True:
            wait = self.refresh()
            if wait is None:  # idle: sleep until the switch is used again
                self._used.clear()
                if self.refresh() is None:  # used between the look and the clear
                    self._used.wait()
            else:
                time.sleep(wait)

    def _untraced_get_parameter(self, **request: Any) -> Any:
        # The background read belongs to no invocation: through the traced client it would
        # join whichever order's trace the process holds (the X-Ray SDK reads it from the
        # environment in any thread), as a call that order never made. So the call skips the
        # tracers' wrappers (X-Ray's and OpenTelemetry's wrap BaseClient._make_api_call).
        make_api_call = inspect.unwrap(type(self._client)._make_api_call)
        return make_api_call(self._client, "GetParameter", request)

    def _read(self, get_parameter: Callable[..., Any]) -> FaultSettings | None:
        """The settings the parameter holds; None (logged) if it cannot be read or is invalid."""
        try:
            value = get_parameter(Name=self._name)["Parameter"]["Value"]
            return FaultSettings.parse(json.loads(value))
        except (ClientError, BotoCoreError, ValueError) as error:
            # ValueError: not JSON, or InvalidFaultSettingsError.
            kind = "invalid" if isinstance(error, InvalidFaultSettingsError) else "unreadable"
            logger.error(
                f"fault switch {self._name} is {kind}; keeping the settings last read",
                extra={"reason": str(error), "kept": self._settings.step_fault_rate},
            )
            return None
