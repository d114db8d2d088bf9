"""What an event function's entry point reads of its invocation: the event and Lambda's context.

The whole Chalice app (what ``chalice deploy`` and ``chalice package`` read, and what unit tests
drive through ``chalice.test``) hands each entry point one of Chalice's event classes
(``SQSEvent``, ``DynamoDBEvent``, ``CloudWatchEvent``). In Lambda, the function's own process
hands it an ``Invocation`` instead (``app.py``, ``chalicelib/functions.py``), so that its cold
start does not load Chalice: Chalice adds its ``app.py`` to the package as source, which an event
function compiled and ran on every cold start for nothing (about 20 ms of CPU; docs/benchmark.md,
"Cold start per function"). Both offer what the entry points read: ``to_dict()`` and ``context``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class LambdaEvent(Protocol):
    """An event as the entry points read it: Chalice's event classes are ones, as is
    ``Invocation``."""

    @property
    def context(self) -> Any:
        """Lambda's context of the invocation (None where there is none, as in unit tests)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The event as Lambda delivered it."""
        ...


@dataclass(frozen=True)
class Invocation:
    """The event Lambda handed the function, and the invocation's context."""

    event: dict[str, Any]
    context: Any

    def to_dict(self) -> dict[str, Any]:
        return self.event
