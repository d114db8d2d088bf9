"""A stream mapping's ``ParallelizationFactor``: up to that many batches of a shard at once, each
partition key in one of them, in order, as Lambda processes them.

LocalStack 2026.3 stores the setting but its ``StreamPoller`` (``localstack/services/lambda_/
event_source_mapping/pollers/stream_poller.py``) ignores it: it hands a shard's records to the
function one batch at a time and reads on only after that invocation. DynamoDB Local gives a
table's stream one shard, so every write of the table waits behind the batch in flight: with
eight orders at once, the outbox relay's turn was most of each hop (measured with
``tools.benchmark_hops --breakdown``: "table stream -> relay's step" 375-1,729 ms p50 of hops of
616-2,455 ms, against ~40 ms with one order).

Lambda, with a factor above 1, processes up to that many batches of a shard concurrently and
keeps the records of a partition key in order (the same key always goes to the same batch
stream). Here each batch read from a shard is split by the records' partition key (a
DynamoDB record's ``Keys``, a Kinesis record's ``PartitionKey``) into at most that many lanes,
each handed to LocalStack's own ``forward_events_to_target`` (its retries, bisecting,
dead-letter destination, per lane) on a worker thread; the poller reads on once all lanes of
the batch are done. A factor of 1 (the default) is LocalStack's behaviour, unchanged.
"""

from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_LANES = "_localcloud_lanes"
_WRAPPED = "_localcloud_lanes_wrapped"


def partition_key(record: dict[str, Any]) -> str:
    """The key Lambda keeps in order: a DynamoDB item's partition (its keys), a Kinesis
    record's partition key."""
    if "dynamodb" in record:
        return json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True)
    return str(record.get("PartitionKey", ""))


def lanes_of(records: list[dict[str, Any]], factor: int) -> list[list[dict[str, Any]]]:
    """The records split into at most ``factor`` lanes, each key's records in one, in order."""
    lanes: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        # The key's own hash, stable across processes (Python's hash() is salted per process).
        lane = zlib.crc32(partition_key(record).encode()) % factor
        lanes.setdefault(lane, []).append(record)
    return [lanes[lane] for lane in sorted(lanes)]


def install() -> None:
    """Give each stream poller its mapping's factor, and wrap its hand-over to the function."""
    from localstack.services.lambda_.event_source_mapping.esm_worker_factory import (
        EsmWorkerFactory,
    )
    from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import (
        StreamPoller,
    )

    if getattr(StreamPoller.forward_events_to_target, _WRAPPED, False):
        return
    get_esm_worker = EsmWorkerFactory.get_esm_worker
    forward_events_to_target = StreamPoller.forward_events_to_target
    workers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="localcloud-stream-lane")

    def esm_worker_with_factor(self: Any) -> Any:
        worker = get_esm_worker(self)
        factor = int(self.esm_config.get("ParallelizationFactor") or 1)
        setattr(worker.poller, _LANES, max(factor, 1))
        return worker

    def forward_in_lanes(self: Any, shard_id: str, records: list[dict[str, Any]]) -> None:
        factor = getattr(self, _LANES, 1)
        lanes = lanes_of(records, factor) if factor > 1 else [records]
        if len(lanes) == 1:
            forward_events_to_target(self, shard_id, records)
            return
        running = [workers.submit(forward_events_to_target, self, shard_id, lane) for lane in lanes]
        # Every lane finishes before the poller reads on; a failure is raised as it would have
        # been unsplit.
        failures = [failure for lane in running if (failure := lane.exception()) is not None]
        if failures:
            raise failures[0]

    setattr(forward_in_lanes, _WRAPPED, True)
    EsmWorkerFactory.get_esm_worker = esm_worker_with_factor  # type: ignore[method-assign]
    StreamPoller.forward_events_to_target = forward_in_lanes  # type: ignore[method-assign]
