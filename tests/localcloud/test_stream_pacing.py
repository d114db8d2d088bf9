"""The stream pollers' idle pacing (localcloud_lambda_executor/stream_pacing.py), run in
LocalStack's own venv against its real ``DynamoDBPoller`` and DynamoDB provider classes:
GetRecords answers and DynamoDB Local's answers are stubbed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

STUBS = """
import json, threading, types
from localstack.services.dynamodb.v2.provider import DynamoDBProvider
from localstack.services.lambda_.event_source_mapping.pollers.dynamodb_poller import DynamoDBPoller
from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import StreamPoller
DynamoDBProvider.forward_request = lambda self, context, service_request=None: {}
from localcloud_lambda_executor import stream_pacing
poller = object.__new__(DynamoDBPoller)  # the table stream's poller, not initialised
poller.source_arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-12-04T00:00"
provider = object.__new__(DynamoDBProvider)
def request(operation, **service_request):
    return types.SimpleNamespace(
        operation=types.SimpleNamespace(name=operation), service_request=service_request
    )
def transaction(*tables):
    return request("TransactWriteItems", TransactItems=[{"Put": {"TableName": t}} for t in tables])
"""

IDLE_SCRIPT = (
    STUBS
    + """
answers = iter([[]] * 4 + [["a record"]] + [[]] * 3)
StreamPoller.get_records = lambda self, iterator: {"Records": next(answers)}
stream_pacing.install()
stream_pacing.install()  # LocalStack loads the plugin once; a second install changes nothing
steps = []
stream_pacing.SIGNAL.wait = lambda table, seen, seconds: steps.append(seconds) or False  # no write
for _ in range(8):
    steps.append(("records", len(poller.get_records("iterator")["Records"])))
print(json.dumps(steps))
"""
)

# The stubs with pacing installed over a stream that has no records, and its write signal.
EMPTY_STREAM = (
    STUBS
    + """
StreamPoller.get_records = lambda self, iterator: {"Records": []}
stream_pacing.install()
signal = stream_pacing.SIGNAL
"""
)

WRITE_SCRIPT = (
    EMPTY_STREAM
    + """
counts = [signal.count("orders")]
for operation in ("Query", "GetItem", "Scan", "TransactGetItems"):
    provider.forward_request(request(operation, TableName="orders"))
counts.append(signal.count("orders"))
waiting = threading.Event()
real_wait = signal.wait
def wait(table, seen, seconds):
    waiting.set()
    return real_wait(table, seen, seconds)
signal.wait = wait
def write():
    waiting.wait()
    provider.forward_request(transaction("orders", "orders"))
writer = threading.Thread(target=write)
writer.start()
poller._localcloud_look_again = False  # in an idle spell: the next wait is the cap
poller.get_records("iterator")  # returns only because the write ends its wait
writer.join()
counts.append(signal.count("orders"))
waits = []
signal.wait = lambda table, seen, seconds: waits.append(seconds) or False
poller.get_records("iterator")
poller.get_records("iterator")
print(json.dumps({"counts": counts, "waits_after_write": waits}))
"""
)


def _run(script: str, **environment: str) -> Any:
    interval = {"LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.05"}
    # A write that failed to end a wait of an hour: the helper's guard fails the test.
    return run_in_localstack(script, **interval, **environment)


def test_an_idle_stream_is_polled_once_a_second_and_looked_at_again_soon_after_records(
    local_cloud: Any,
) -> None:
    steps = _run(IDLE_SCRIPT)
    waits = [step for step in steps if not isinstance(step, list)]
    # An empty answer waits the poll interval once, then the cap (1 s) while no write comes
    # (before: 0.05, 0.1, 0.2, 0.25, 0.25 s: four GetRecords a second while idle)...
    assert waits[:4] == [0.05, 1.0, 1.0, 1.0]
    # ...an answer with records waits nothing, and the next empty one looks again soon.
    assert ["records", 1] in steps
    after = steps[steps.index(["records", 1]) + 1 :]
    assert [w for w in after if not isinstance(w, list)] == [0.05, 1.0, 1.0]


def test_a_table_write_ends_an_idle_pollers_wait_at_once_and_reads_do_not(
    local_cloud: Any,
) -> None:
    # GIVEN a poller in an idle spell, its next wait an hour long
    seen = _run(WRITE_SCRIPT, LOCALCLOUD_STREAM_IDLE_POLL_SEC="3600")
    # THEN reads through the DynamoDB provider wake no poller
    assert seen["counts"][0] == seen["counts"][1]
    # AND a write does: the poller's wait ended (the script finished), and the next empty answer
    # looks again after the poll interval before waiting for writes again
    assert seen["counts"][2] == seen["counts"][1] + 1
    assert seen["waits_after_write"] == [0.05, 3600.0]


WOKEN_SCRIPT = (
    STUBS
    + """
calls = []
def get_records(self, iterator):
    calls.append(iterator)
    # The write lands after the first read: its record is one iterator step on.
    return {"iterator": {"Records": [], "NextShardIterator": "next"},
            "next": {"Records": ["the write's record"], "NextShardIterator": "after"}}[iterator]
StreamPoller.get_records = get_records
stream_pacing.install()
stream_pacing.SIGNAL.wait = lambda table, seen, seconds: True  # a write came while it waited
woken = poller.get_records("iterator")
print(json.dumps({"calls": calls, "returned": woken}))
"""
)


def test_a_poller_woken_by_a_write_reads_the_stream_again_at_once(local_cloud: Any) -> None:
    # GIVEN an empty read, then a write while the poller waits
    seen = _run(WOKEN_SCRIPT)
    # THEN it reads on from where the empty read left off within the same poll, and hands the
    # write's record (and its iterator) to the worker, instead of returning empty and reading
    # again only after the worker's poll interval (before: one call, no records)
    assert seen["calls"] == ["iterator", "next"]
    assert seen["returned"] == {"Records": ["the write's record"], "NextShardIterator": "after"}


LANES_SCRIPT = """
import json
from localcloud_lambda_executor.stream_lanes import lanes_of
def record(key, number):
    # An order's items share the hash key and differ in the sort key (the orders table's).
    keys = {"pk": {"S": key}, "sk": {"S": f"item-{number}"}}
    return {"dynamodb": {"Keys": keys, "SequenceNumber": str(number)}}
records = [record(f"order-{n % 6}", n) for n in range(30)]
lanes = lanes_of(records, 4, "pk")
print(json.dumps([[(r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"]))
                   for r in lane] for lane in lanes]))
"""


def test_a_shards_batch_is_split_into_lanes_each_partition_key_in_one_in_order(
    local_cloud: Any,
) -> None:
    # GIVEN a batch of 30 records of 6 orders (each record its own sort key), split for a
    # parallelization factor of 4 by the table's hash key
    lanes = run_in_localstack(LANES_SCRIPT)
    # THEN at most 4 lanes, every record in one of them
    assert 1 < len(lanes) <= 4
    assert sorted(number for lane in lanes for _, number in lane) == list(range(30))
    # AND each order's records all in one lane, in the order the stream had them (before, the
    # lane went by all of the keys: an order's items, and its events, fell in different lanes)
    for key in {key for lane in lanes for key, _ in lane}:
        holding = [lane for lane in lanes if any(k == key for k, _ in lane)]
        assert len(holding) == 1
        numbers = [number for k, number in holding[0] if k == key]
        assert numbers == sorted(numbers)


TABLES_SCRIPT = (
    EMPTY_STREAM
    + """
arn = "arn:aws:dynamodb:us-east-1:000000000000:table/{}"
writes = {
    "PutItem to the other table": request("PutItem", TableName="other"),
    "UpdateItem to the other table, by ARN": request("UpdateItem", TableName=arn.format("other")),
    "TransactWriteItems to the other table": transaction("other", "vouchers"),
    "BatchWriteItem to the other table": request("BatchWriteItem", RequestItems={"other": []}),
    "DeleteItem to this table, by ARN": request("DeleteItem", TableName=arn.format("orders")),
    "TransactWriteItems to both": transaction("other", "orders"),
    "BatchWriteItem to both": request("BatchWriteItem", RequestItems={"other": [], "orders": []}),
    "ExecuteStatement (PartiQL)": request("ExecuteStatement", Statement="UPDATE other SET a=1"),
}
woke = {}
for name, write in writes.items():
    before = signal.count("orders")
    provider.forward_request(write)
    woke[name] = signal.count("orders") != before
print(json.dumps(woke))
"""
)


def test_a_write_wakes_the_pollers_of_the_tables_it_wrote_and_no_others(local_cloud: Any) -> None:
    # GIVEN the poller of table "orders" (its stream's ARN names it)
    woke = _run(TABLES_SCRIPT)
    # THEN a write that names only other tables leaves it waiting (each stage's writes used to
    # make every other stage's relay read its idle stream)...
    assert woke["PutItem to the other table"] is False
    assert woke["UpdateItem to the other table, by ARN"] is False
    assert woke["TransactWriteItems to the other table"] is False
    assert woke["BatchWriteItem to the other table"] is False
    # ...one that names its table, by name or ARN, alone or with others, wakes it...
    assert woke["DeleteItem to this table, by ARN"] is True
    assert woke["TransactWriteItems to both"] is True
    assert woke["BatchWriteItem to both"] is True
    # ...and a PartiQL write, whose tables are not parsed, wakes every poller, never none
    assert woke["ExecuteStatement (PartiQL)"] is True
