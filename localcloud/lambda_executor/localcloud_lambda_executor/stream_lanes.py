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
DynamoDB record's hash key attribute, from the stream's ``KeySchema``: not the sort key, so an
order's item and its event items, written in one transaction, share a lane and one invocation;
a Kinesis record's ``PartitionKey``) into at most that many lanes,
each handed to LocalStack's own ``forward_events_to_target`` (its retries, bisecting,
dead-letter destination, per lane) on a worker thread; the poller reads on once all lanes of
the batch are done. A factor of 1 (the default) is LocalStack's behaviour, unchanged.
"""

from __future__ import annotations

import json
import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LOG = logging.getLogger(__name__)
_LANES = "_localcloud_lanes"
_HASH_KEY = "_localcloud_hash_key"
_WRAPPED = "_localcloud_lanes_wrapped"


def partition_key(record: dict[str, Any], hash_key: str | None = None) -> str:
    """The key Lambda keeps in order: a DynamoDB item's partition key (the table's hash key
    attribute, not its sort key: an order's items share it), a Kinesis record's partition key.
    Without the table's hash key attribute, all of the item's keys."""
    if "dynamodb" in record:
        keys = record["dynamodb"].get("Keys", {})
        if hash_key is not None and hash_key in keys:
            keys = {hash_key: keys[hash_key]}
        return json.dumps(keys, sort_keys=True)
    return str(record.get("PartitionKey", ""))


def lanes_of(
    records: list[dict[str, Any]], factor: int, hash_key: str | None = None
) -> list[list[dict[str, Any]]]:
    """The records split into at most ``factor`` lanes, each key's records in one, in order."""
    lanes: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        # The key's own hash, stable across processes (Python's hash() is salted per process).
        lane = zlib.crc32(partition_key(record, hash_key).encode()) % factor
        lanes.setdefault(lane, []).append(record)
    return [lanes[lane] for lane in sorted(lanes)]


def table_hash_key(poller: Any) -> str | None:
    """The hash key attribute of the table whose stream the poller reads (None if unknown:
    then all of an item's keys)."""
    try:
        schema = poller.source_client.describe_stream(StreamArn=poller.source_arn)[
            "StreamDescription"
        ]["KeySchema"]
    except Exception:  # noqa: BLE001 - said in the log: lanes by all of the keys
        LOG.warning("no key schema for %s: lanes by all of an item's keys", poller.source_arn)
        return None
    return next((key["AttributeName"] for key in schema if key["KeyType"] == "HASH"), None)


def install() -> None:
    """Give each stream poller its mapping's factor, and wrap its hand-over to the function."""
    from localstack.services.lambda_.event_source_mapping.esm_worker_factory import (
        EsmWorkerFactory,
    )
    from localstack.services.lambda_.event_source_mapping.pollers.dynamodb_poller import (
        DynamoDBPoller,
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
        factor = max(int(self.esm_config.get("ParallelizationFactor") or 1), 1)
        setattr(worker.poller, _LANES, factor)
        if factor > 1 and isinstance(worker.poller, DynamoDBPoller):
            setattr(worker.poller, _HASH_KEY, table_hash_key(worker.poller))
        return worker

    def forward_in_lanes(self: Any, shard_id: str, records: list[dict[str, Any]]) -> None:
        factor = getattr(self, _LANES, 1)
        hash_key = getattr(self, _HASH_KEY, None)
        lanes = lanes_of(records, factor, hash_key) if factor > 1 else [records]
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
