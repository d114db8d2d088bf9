"""Idle pacing for LocalStack's table-stream pollers: an idle stream is polled once a second,
and at once after a write.

LocalStack 2026.3's ``StreamPoller`` (``localstack/services/lambda_/event_source_mapping/
pollers/stream_poller.py``) calls GetRecords every ``LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC``
whether or not the last call returned records ("We cannot reliably back-off when no records
found"), and the local cloud sets that interval to 0.05 s for the SQS hops
(``localcloud/server.py``). Each stream mapping (one per deployment: the outbox relay's) then
makes about 20 GetRecords a second while nothing happens, each a request LocalStack serves to
itself and forwards to DynamoDB Local (measured: ~10 ms of DynamoDB Local's CPU each, besides
LocalStack's).

A stream's records come from writes, and every write reaches DynamoDB Local through LocalStack's
DynamoDB provider. So each write there (PutItem, UpdateItem, TransactWriteItems, ...) wakes the
pollers of the tables it wrote at once (a PartiQL statement, whose tables are not parsed here,
wakes them all; before, every write woke every table's pollers, so each order's writes to one
stage's table made the other stage's relay read its idle stream twice a write), and the woken
poller reads the stream again at once (not after the worker's
poll interval: that sleep was most of a table stream -> function hop, ~50 of ~90 ms); after a
GetRecords that returned records, or that a write woke, an empty one waits the poll interval and
looks once more (an iterator may need a step more to reach a new record); otherwise the poller
waits for the next write, at most ``LOCALCLOUD_STREAM_IDLE_POLL_SEC`` (default 1 s). A record is
read as soon as it is written; an idle stream costs one GetRecords a second. (Measured over the
flows' benchmark and 30 idle seconds: before, with a doubling wait capped at 0.25 s and no
wake-up, 4 GetRecords a second while idle.) AWS's own stream pollers
poll each shard about 4 times a second.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

IDLE_POLL_VARIABLE = "LOCALCLOUD_STREAM_IDLE_POLL_SEC"
DEFAULT_IDLE_POLL_SECONDS = 1.0
# The DynamoDB operations that can add records to a table's stream.
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
# The writes whose tables are in a statement, not in the request's fields.
PARTIQL = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
_PACED = "_localcloud_paced"


class WriteSignal:
    """Counts each table's writes; a poller waits until its table's count moves on or its time is
    up."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._counts: dict[str, int] = {}
        self._unparsed = 0  # writes whose tables are not known: they count for every table

    def count(self, table: str) -> int:
        return self._counts.get(table, 0) + self._unparsed

    def written(self, tables: Iterable[str] | None) -> None:
        """``tables``: the tables a write changed; None when not known (then all of them)."""
        with self._changed:
            if tables is None:
                self._unparsed += 1
            else:
                for table in set(tables):
                    self._counts[table] = self._counts.get(table, 0) + 1
            self._changed.notify_all()

    def wait(self, table: str, seen: int, seconds: float) -> bool:
        """True if ``table`` was written after its count `seen` (at once if it already was)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count(table) != seen, seconds)


def written_tables(operation: str, request: Any) -> set[str] | None:
    """The tables a DynamoDB write request names; None if it is a PartiQL one (not parsed)."""
    if operation in PARTIQL or not isinstance(request, dict):
        return None
    if operation == "BatchWriteItem":
        names = list(request.get("RequestItems") or {})
    elif operation == "TransactWriteItems":
        names = [
            action.get("TableName")
            for item in request.get("TransactItems") or []
            for action in item.values()
            if isinstance(action, dict)
        ]
    else:
        names = [request.get("TableName")]
    if not names or not all(isinstance(name, str) for name in names):
        return None
    return {table_name(name) for name in names}


def table_name(name_or_arn: str) -> str:
    """A table's name from its name, its ARN or its stream's ARN
    (``arn:...:table/<name>[/stream/<label>]``)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":table/", 1)[-1].split("/", 1)[0]
    return name_or_arn


SIGNAL = WriteSignal()


def install() -> None:
    """Wrap ``StreamPoller.get_records`` and the DynamoDB provider's forwarding, once."""
    from localstack import config
    from localstack.services.dynamodb.v2.provider import DynamoDBProvider
    from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import (
        StreamPoller,
    )

    get_records = StreamPoller.get_records
    if getattr(get_records, _PACED, False):
        return
    cap = float(os.environ.get(IDLE_POLL_VARIABLE) or DEFAULT_IDLE_POLL_SECONDS)
    start = max(float(config.LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC), 0.01)

    def paced_get_records(self: Any, shard_iterator: str) -> dict[str, Any]:
        table = table_name(getattr(self, "source_arn", "") or "")
        seen = SIGNAL.count(table)
        response: dict[str, Any] = get_records(self, shard_iterator)
        if response.get("Records"):
            self._localcloud_look_again = True
            return response
        wait = start if getattr(self, "_localcloud_look_again", True) else cap
        # Woken by a write: its records may need an iterator step more, so look again soon.
        self._localcloud_look_again = SIGNAL.wait(table, seen, wait)
        following = response.get("NextShardIterator")
        if self._localcloud_look_again and following:
            # Read what the write added now, not after the worker's poll interval (once: the
            # worker's loop, which checks for shutdown, takes over from there).
            response = get_records(self, following)
        return response

    forward_request = DynamoDBProvider.forward_request

    def forward_request_and_signal(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return forward_request(self, context, *args, **kwargs)
        finally:
            operation = context.operation.name if context.operation is not None else None
            if operation in WRITES:
                request = args[0] if args else kwargs.get("service_request")
                if request is None:
                    request = getattr(context, "service_request", None)
                SIGNAL.written(written_tables(operation, request))

    setattr(paced_get_records, _PACED, True)
    StreamPoller.get_records = paced_get_records  # type: ignore[method-assign]
    DynamoDBProvider.forward_request = forward_request_and_signal  # type: ignore[method-assign]
