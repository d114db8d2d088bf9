"""Several batches of a standard SQS queue in flight at once, as Lambda's SQS pollers do.

LocalStack 2026.3's ``SqsPoller`` (``localstack/services/lambda_/event_source_mapping/pollers/
sqs_poller.py``) invokes the function for a batch and waits for it before it receives again:
one mapping, one batch at a time. When several orders are in flight, a message that arrives
while its consumer handles another batch waits for that whole invocation, then for the next
receive: queueing that AWS does not have, since Lambda polls a standard queue with five
concurrent batches to begin with and scales out from there (up to the function's reserved
concurrency, or the mapping's ``ScalingConfig.MaximumConcurrency``).

So each batch is handed to a worker thread and the poller receives again at once, with at most
``LOCALCLOUD_SQS_BATCHES_IN_FLIGHT`` (default 5, AWS's starting point) batches of one mapping
in flight; past that the poller waits for one to finish. Everything else is LocalStack's own
``handle_messages`` per batch: filtering, the invoke, partial batch failures, the deletes. A
FIFO queue keeps LocalStack's one batch at a time (a message group is handled in order).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LOG = logging.getLogger(__name__)
IN_FLIGHT_VARIABLE = "LOCALCLOUD_SQS_BATCHES_IN_FLIGHT"
DEFAULT_IN_FLIGHT = 5
_CONCURRENT = "_localcloud_concurrent"


def install() -> None:
    """Wrap ``SqsPoller.handle_messages``, once."""
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    handle_messages = SqsPoller.handle_messages
    if getattr(handle_messages, _CONCURRENT, False):
        return
    in_flight = max(int(os.environ.get(IN_FLIGHT_VARIABLE) or DEFAULT_IN_FLIGHT), 1)
    # One pool for every mapping (a mapping's threads must not outlive it); each mapping's own
    # slots bound how many of its batches are in flight.
    workers = ThreadPoolExecutor(max_workers=64, thread_name_prefix="localcloud-sqs-batch")
    slots_lock = threading.Lock()

    def slots_of(poller: Any) -> threading.BoundedSemaphore:
        with slots_lock:
            slots: threading.BoundedSemaphore | None = getattr(poller, "_localcloud_slots", None)
            if slots is None:
                slots = poller._localcloud_slots = threading.BoundedSemaphore(in_flight)
            return slots

    def handle_in_flight(self: Any, messages: list[dict[str, Any]]) -> None:
        if self.is_fifo_queue or in_flight == 1:
            handle_messages(self, messages)
            return
        slots = slots_of(self)
        slots.acquire()  # past the bound, the poller waits here before it receives again

        def handle() -> None:
            try:
                handle_messages(self, messages)
            except Exception as error:  # logged as LocalStack's poll_events logs it
                LOG.warning("Polling or batch processing failed: %s", error)
            finally:
                slots.release()

        workers.submit(handle)

    setattr(handle_in_flight, _CONCURRENT, True)
    SqsPoller.handle_messages = handle_in_flight  # type: ignore[method-assign]
