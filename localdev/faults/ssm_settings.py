"""The fault switch as an SSM parameter, cached per process (see ``__init__.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.tracing import logger

from . import MAX_AGE_SECONDS, FaultSettings, InvalidFaultSettingsError


class SsmFaultSettings:
    """The settings stored in ``parameter_name``, read at most once per ``max_age`` seconds.

    The switch is a test instrument: if it cannot be read, or holds something invalid, orders
    go on with the settings last read (off at first), and the reason is logged as an error,
    once per ``max_age``: a broken switch never stops the system it is testing.
    """

    def __init__(
        self,
        parameter_name: str,
        client: Any,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = parameter_name
        self._client = client
        self._max_age = max_age
        self._clock = clock
        self._settings = FaultSettings()
        self._read_at: float | None = None

    def __call__(self) -> FaultSettings:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._max_age:
            self._read_at = now
            self._settings = self._read()
        return self._settings

    def _read(self) -> FaultSettings:
        try:
            value = self._client.get_parameter(Name=self._name)["Parameter"]["Value"]
            return FaultSettings.parse(json.loads(value))
        except (ClientError, BotoCoreError, ValueError) as error:
            # ValueError: not JSON, or InvalidFaultSettingsError.
            kind = "invalid" if isinstance(error, InvalidFaultSettingsError) else "unreadable"
            logger.error(
                f"fault switch {self._name} is {kind}; keeping the settings last read",
                extra={"reason": str(error), "kept": self._settings.step_fault_rate},
            )
            return self._settings
