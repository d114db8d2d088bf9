"""Function logs sent to CloudWatch Logs a batch at a time, not an invocation at a time.

LocalStack 2026.3 keeps one log thread per function version (``services/lambda_/invocation/
logs.py``, ``LogHandler.run_log_loop``) that sends each invocation's log (START, output, END,
REPORT) in a PutLogEvents request of its own, a request LocalStack serves to itself. Counted from
the local cloud's log during the flows' benchmark, that was a sixth of the requests it served.

Here the thread takes what has queued up within ``LOCALCLOUD_LOGS_BATCH_SEC`` (default 0.5 s) of
an invocation's log and sends it with one PutLogEvents per log stream: every line, in order,
with the time its invocation's log was handed over (LocalStack stamps every line of an
invocation with one time). A log reaches CloudWatch Logs at most that much later (in AWS,
seconds later). Shutdown sends what was collected first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from typing import Any

LOG = logging.getLogger(__name__)
BATCH_VARIABLE = "LOCALCLOUD_LOGS_BATCH_SEC"
DEFAULT_BATCH_SECONDS = 0.5
# PutLogEvents takes up to 10,000 events and 1 MiB (each event counted with 26 bytes more).
MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576 - 64 * 1024  # a margin under the limit
EVENT_OVERHEAD = 26
_BATCHED = "_localcloud_batched"


def events_of(logs: str, timestamp_ms: int) -> list[dict[str, Any]]:
    """An invocation's log as LocalStack makes it events: a line each (newline kept), empty
    lines dropped (CloudWatch refuses them), all with the invocation's time."""
    return [
        {"timestamp": timestamp_ms, "message": line + "\n"} for line in logs.split("\n") if line
    ]


def batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Events split into PutLogEvents-sized requests, in order."""
    out: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        event_size = len(event["message"].encode()) + EVENT_OVERHEAD
        if out[-1] and (len(out[-1]) >= MAX_EVENTS or size + event_size > MAX_BYTES):
            out.append([])
            size = 0
        out[-1].append(event)
        size += event_size
    return [batch for batch in out if batch]


def install() -> None:
    """Replace ``LogHandler.run_log_loop`` with one that batches."""
    from localstack.aws.connect import connect_to
    from localstack.services.lambda_.invocation import logs as lambda_logs
    from localstack.utils.aws.client_types import ServicePrincipal

    handler_class = lambda_logs.LogHandler
    if getattr(handler_class.run_log_loop, _BATCHED, False):
        return
    window = float(os.environ.get(BATCH_VARIABLE) or DEFAULT_BATCH_SECONDS)
    shutdown_pill = lambda_logs.QUEUE_SHUTDOWN

    def run_log_loop(self: Any, *args: Any, **kwargs: Any) -> None:
        logs_client = connect_to.with_assumed_role(
            region_name=self.region,
            role_arn=self.role_arn,
            service_principal=ServicePrincipal.lambda_,
        ).logs
        while not self._shutdown_event.is_set():
            first = self.log_queue.get()
            if first is shutdown_pill:
                return
            # (invocation's log, when it was taken: LocalStack's time for all its lines)
            taken = [(first, _now_ms())]
            stop = False
            collect_until = time.monotonic() + window
            while (remaining := collect_until - time.monotonic()) > 0:
                try:
                    item = self.log_queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is shutdown_pill:
                    stop = True
                    break
                taken.append((item, _now_ms()))
            send(logs_client, taken)
            if stop:
                return

    setattr(run_log_loop, _BATCHED, True)
    handler_class.run_log_loop = run_log_loop


def _now_ms() -> int:
    return int(time.time() * 1000)


def send(logs_client: Any, taken: list[tuple[Any, int]]) -> None:
    """One PutLogEvents per log stream (more if over the request's limits), lines in order."""
    streams: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item, timestamp_ms in taken:
        key = (item.log_group, item.log_stream)
        streams.setdefault(key, []).extend(events_of(item.logs, timestamp_ms))
    for (group, stream), events in streams.items():
        for batch in batches(events):
            try:
                _put(logs_client, group, stream, batch)
            except Exception as error:  # as LocalStack's own loop: log it and go on
                LOG.warning("Error saving logs to group %s: %s", group, error)


def _put(logs_client: Any, group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """PutLogEvents, creating the group and stream the first time (as LocalStack does)."""
    try:
        logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    except logs_client.exceptions.ResourceNotFoundException:
        with contextlib.suppress(logs_client.exceptions.ResourceAlreadyExistsException):
            logs_client.create_log_group(logGroupName=group)
        logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
        logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
