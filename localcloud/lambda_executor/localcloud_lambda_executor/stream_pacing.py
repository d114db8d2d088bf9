"""Idle pacing for LocalStack's table-stream pollers: they stop polling 20 times a second.

LocalStack 2026.3's ``StreamPoller`` (``localstack/services/lambda_/event_source_mapping/
pollers/stream_poller.py``) calls GetRecords every ``LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC``
whether or not the last call returned records ("We cannot reliably back-off when no records
found"), and the local cloud sets that interval to 0.05 s for the SQS hops
(``localcloud/server.py``). Each stream mapping (one per deployment: the outbox relay's) then
makes about 20 GetRecords a second while nothing happens, each a request LocalStack serves to
itself and forwards to DynamoDB Local: measured, two idle deployments kept LocalStack at about
a quarter of a core.

So after each GetRecords that returned nothing the poller waits a little longer, doubling
from the poll interval up to ``LOCALCLOUD_STREAM_IDLE_POLL_SEC`` (default 0.25 s); a call that
returns records resets it. A record written after a quiet spell waits at most that long more
than before; records of a stream in use wait no longer than before. AWS's own stream pollers
poll each shard about 4 times a second.
"""

from __future__ import annotations

import os
import time
from typing import Any

IDLE_POLL_VARIABLE = "LOCALCLOUD_STREAM_IDLE_POLL_SEC"
DEFAULT_IDLE_POLL_SECONDS = 0.25
_PACED = "_localcloud_paced"


def install() -> None:
    """Wrap ``StreamPoller.get_records`` once (LocalStack loads the executor plugin once)."""
    from localstack import config
    from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import (
        StreamPoller,
    )

    get_records = StreamPoller.get_records
    if getattr(get_records, _PACED, False):
        return
    cap = float(os.environ.get(IDLE_POLL_VARIABLE) or DEFAULT_IDLE_POLL_SECONDS)
    start = max(float(config.LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC), 0.01)

    def paced_get_records(self: Any, shard_iterator: str) -> dict[str, Any]:
        response: dict[str, Any] = get_records(self, shard_iterator)
        if response.get("Records"):
            self._localcloud_idle_seconds = 0.0
        else:
            idle = min(max(getattr(self, "_localcloud_idle_seconds", 0.0) * 2, start), cap)
            self._localcloud_idle_seconds = idle
            time.sleep(idle)
        return response

    setattr(paced_get_records, _PACED, True)
    StreamPoller.get_records = paced_get_records  # type: ignore[method-assign]
