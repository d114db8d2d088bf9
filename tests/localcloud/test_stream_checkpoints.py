"""A stream mapping's place in its stream survives the mapping's update
(localcloud_lambda_executor/stream_checkpoints.py), run in LocalStack's own venv against its real
``DynamoDBPoller``: the stream (GetRecords, GetShardIterator) and the function are stubbed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json
from localstack.services.lambda_.event_source_mapping.pollers.dynamodb_poller import DynamoDBPoller
from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import StreamPoller
from localcloud_lambda_executor import stream_checkpoints

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-12-04T00:00:00.000"
# A shard of five records, one GetRecords each: iterator "at-N" reads record N.
def get_records(self, iterator):
    n = int(iterator.split("-")[1])
    return {"Records": [f"record-{n}"] if n < 5 else [], "NextShardIterator": f"at-{min(n + 1, 5)}"}
StreamPoller.get_records = get_records
handed, asked_for_iterators = [], []
def forward(self, shard_id, records):
    if self.stop_before_handing:
        raise KeyboardInterrupt  # the worker stopped while it handed this batch over
    handed.extend(records)
StreamPoller.forward_events_to_target = forward
def initialize_shards(self):
    asked_for_iterators.append(self.esm_uuid)
    return {"shard-1": "at-0"}  # TRIM_HORIZON: the first record
DynamoDBPoller.initialize_shards = initialize_shards
stream_checkpoints.install()
stream_checkpoints.install()  # a second install changes nothing

def worker(uuid, stop_before_handing=False):
    poller = DynamoDBPoller(source_arn=ARN, esm_uuid=uuid, processor=object(), source_parameters={
        "DynamoDBStreamParameters": {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0,
                                     "StartingPosition": "TRIM_HORIZON"}})
    poller.stop_before_handing = stop_before_handing
    return poller

# A new worker of mapping `uuid` polls `polls` times; what it handed to the function.
def hand_over(uuid, polls, stop_before_handing=False):
    handed.clear()
    poller = worker(uuid, stop_before_handing)
    for _ in range(polls):
        try:
            poller.poll_events()
        except KeyboardInterrupt:
            pass
    return list(handed)

seen = {"first worker handed": hand_over("mapping-a", 2)}
# The mapping is updated: LocalStack makes a new worker and poller for it.
seen["after the update handed"] = hand_over("mapping-a", 1)
# Updated again, the worker stops while it hands a batch over; its successor hands it over.
seen["the stopped worker handed"] = hand_over("mapping-a", 1, stop_before_handing=True)
seen["after a stop mid-batch handed"] = hand_over("mapping-a", 3)
# Another mapping of the same stream starts where its own StartingPosition says.
seen["another mapping handed"] = hand_over("mapping-b", 1)
seen["asked for iterators"] = asked_for_iterators
print(json.dumps(seen))
"""


def test_an_updated_stream_mapping_reads_on_from_its_place_and_never_skips_a_batch(
    local_cloud: Any,
) -> None:
    seen = run_in_localstack(SCRIPT)
    # GIVEN a TRIM_HORIZON mapping that handed its first two records to the function
    assert seen["first worker handed"] == ["record-0", "record-1"]
    # WHEN the mapping is updated (a new worker and poller)
    # THEN the new poller reads on from the third record, not the stream's start (before: the
    # new poller asked for a TRIM_HORIZON iterator and handed records 0 and 1 over again)
    assert seen["after the update handed"] == ["record-2"]
    # AND a batch that a stopped worker read but did not hand over is handed over by the next
    # worker, then the rest: none skipped, none twice
    assert seen["the stopped worker handed"] == []
    assert seen["after a stop mid-batch handed"] == ["record-3", "record-4"]
    # AND another mapping of the stream, and only the first worker of each, starts at its
    # StartingPosition
    assert seen["another mapping handed"] == ["record-0"]
    assert seen["asked for iterators"] == ["mapping-a", "mapping-b"]
