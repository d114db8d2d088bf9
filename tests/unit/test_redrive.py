"""Unit tests of ``python -m tools.redrive`` against an in-memory SQS (no cloud)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tools import redrive

ACCOUNT = "arn:aws:sqs:us-east-1:000000000000"


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class FakeQueue:
    name: str
    dead_letters: str | None = None  # the name of its dead-letter queue
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeSqs:
    """The SQS calls the tool makes, on queues kept in memory; a move task finishes at once."""

    def __init__(self, *queues: FakeQueue, move_tasks: bool = True) -> None:
        self.queues = {q.name: q for q in queues}
        self.move_tasks = move_tasks
        self.tasks: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.hidden: set[str] = set()  # received, not yet visible again

    def _queue(self, url: str) -> FakeQueue:
        return self.queues[url.rsplit("/", 1)[1]]

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        if QueueName not in self.queues:
            raise _error("AWS.SimpleQueueService.NonExistentQueue", "GetQueueUrl")
        return {"QueueUrl": f"https://sqs.local/000000000000/{QueueName}"}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        queue = self._queue(QueueUrl)
        attributes = {
            "QueueArn": f"{ACCOUNT}:{queue.name}",
            "ApproximateNumberOfMessages": str(len(queue.messages)),
        }
        if queue.dead_letters:
            target = f"{ACCOUNT}:{queue.dead_letters}"
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target, "maxReceiveCount": 3}
            )
        return {"Attributes": {k: v for k, v in attributes.items() if k in AttributeNames}}

    def list_dead_letter_source_queues(self, QueueUrl: str) -> dict[str, Any]:
        name = self._queue(QueueUrl).name
        sources = [q.name for q in self.queues.values() if q.dead_letters == name]
        return {"queueUrls": [self.get_queue_url(s)["QueueUrl"] for s in sources]}

    def start_message_move_task(self, SourceArn: str) -> dict[str, str]:
        if not self.move_tasks:
            raise _error("AWS.SimpleQueueService.UnsupportedOperation", "StartMessageMoveTask")
        dead_letters = self.queues[SourceArn.rsplit(":", 1)[1]]
        (source,) = [q for q in self.queues.values() if q.dead_letters == dead_letters.name]
        moved = len(dead_letters.messages)
        source.messages += dead_letters.messages
        dead_letters.messages = []
        self.tasks[SourceArn] = {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": moved}
        return {"TaskHandle": "handle"}

    def list_message_move_tasks(self, SourceArn: str, **_: Any) -> dict[str, Any]:
        return {"Results": [self.tasks[SourceArn]]}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        queue = self._queue(QueueUrl)
        visible = [m for m in queue.messages if str(id(m)) not in self.hidden]
        batch = visible[:MaxNumberOfMessages]
        self.hidden |= {str(id(m)) for m in batch}
        return {"Messages": [m | {"ReceiptHandle": str(id(m))} for m in batch]}

    def change_message_visibility(
        self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int
    ) -> None:
        assert VisibilityTimeout == 0
        self.hidden.discard(ReceiptHandle)

    def send_message(self, QueueUrl: str, MessageBody: str, **attributes: Any) -> None:
        sent = {"Body": MessageBody, **attributes}
        self.sent.append(sent)
        self._queue(QueueUrl).messages.append(sent)

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        queue = self._queue(QueueUrl)
        queue.messages = [m for m in queue.messages if str(id(m)) != ReceiptHandle]


def deployed(stage_prefix: str = "orders-local", dead: dict[str, int] | None = None) -> FakeSqs:
    """The four queues of a deployment and their dead-letter queues, ``dead`` messages in each,
    and the relay's dead-letter queue (empty)."""
    queues = [FakeQueue(f"{stage_prefix}-relay-dlq")]
    for service in ("restaurant-notifier", "restaurant-deadline", "user-notifier", "promotions"):
        name = f"{stage_prefix}-{service}"
        letters = [
            {"Body": f'{{"n": {i}}}', "MessageAttributes": {"type": {"DataType": "String"}}}
            for i in range((dead or {}).get(service, 0))
        ]
        queues += [FakeQueue(name, f"{name}-dlq"), FakeQueue(f"{name}-dlq", messages=letters)]
    return FakeSqs(*queues)


STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders-local/stream/2026-01-01"


def event_item(order_id: str, event: str) -> dict[str, Any]:
    return {"pk": {"S": order_id}, "sk": {"S": "EVENT#000001"}, "event": {"S": event}}


class FakeStream:
    """DynamoDB Streams' reads of one shard, two records a page; ``trimmed``: it no longer
    keeps them."""

    def __init__(self, items: list[dict[str, Any]], trimmed: bool = False) -> None:
        self.records = [
            {
                "eventID": f"id-{n}",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "Keys": {"pk": item["pk"], "sk": item["sk"]},
                    "NewImage": item,
                    "SequenceNumber": str(100 + n),
                },
            }
            for n, item in enumerate(items)
        ]
        self.trimmed = trimmed

    def get_shard_iterator(self, SequenceNumber: str, **_: Any) -> dict[str, str]:
        if self.trimmed:
            raise _error("TrimmedDataAccessException", "GetShardIterator")
        return {"ShardIterator": str(int(SequenceNumber) - 100)}

    def get_records(self, ShardIterator: str) -> dict[str, Any]:
        at = int(ShardIterator)
        return {"Records": self.records[at : at + 2], "NextShardIterator": str(at + 2)}


class FakeTable:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = {(i["pk"]["S"], i["sk"]["S"]): i for i in items}

    def get_item(self, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        found = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": found} if found else {}


class FakeRelayFunction:
    """The relay as Lambda invokes it: fails the records whose event item says "broken"."""

    def __init__(self) -> None:
        self.relayed: list[str] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        assert FunctionName == "orders-local-relay_recorded_events"
        failures = []
        for record in json.loads(Payload)["Records"]:
            image = record["dynamodb"]["NewImage"]
            if image["event"]["S"] == "broken":
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            else:
                self.relayed.append(image["event"]["S"])
        return {"Payload": io.BytesIO(json.dumps({"batchItemFailures": failures}).encode())}


def relay_of(stream: FakeStream, table: FakeTable, function: FakeRelayFunction) -> Any:
    return redrive.RelayReplay(
        "orders-local-relay-dlq", "orders-local-relay_recorded_events", "orders-local",
        function, stream, table,
    )  # fmt: skip


def batch_failed(first: int, last: int) -> dict[str, Any]:
    """What the stream sends the relay's dead-letter queue (its DDBStreamBatchInfo)."""
    info = {
        "shardId": "shard-1",
        "startSequenceNumber": str(first),
        "endSequenceNumber": str(last),
        "streamArn": STREAM,
        "batchSize": last - first + 1,
    }
    return {"Body": json.dumps({"requestContext": {}, "DDBStreamBatchInfo": info})}


def run(
    sqs: FakeSqs, *argv: str, capsys: pytest.CaptureFixture[str], relay: Any = None
) -> tuple[int, list[str]]:
    relay = relay or relay_of(FakeStream([]), FakeTable(), FakeRelayFunction())
    status = redrive.main(list(argv), sqs=sqs, relay=relay)
    return status, capsys.readouterr().out.splitlines()


def test_a_dry_run_counts_every_dead_letter_queue_and_moves_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs = deployed(dead={"user-notifier": 2, "promotions": 1})
    status, lines = run(sqs, "--dry-run", capsys=capsys)
    assert status == 0
    assert (
        "orders-local-user-notifier-dlq: 2 waiting (source queue orders-local-user-notifier)"
        in (lines)
    )
    assert lines[-1] == "redriven=0 queues=5 waiting=3"
    assert len(sqs.queues["orders-local-user-notifier-dlq"].messages) == 2


def test_redrive_moves_every_dead_letter_back_to_its_source_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs = deployed(dead={"user-notifier": 2, "promotions": 1})
    status, lines = run(sqs, capsys=capsys)
    assert status == 0
    assert lines[-1] == "redriven=3 queues=5 waiting=3"
    assert (
        "orders-local-user-notifier-dlq: moved 2 to orders-local-user-notifier "
        "(StartMessageMoveTask)"
    ) in lines
    assert len(sqs.queues["orders-local-user-notifier"].messages) == 2
    assert sqs.queues["orders-local-user-notifier-dlq"].messages == []


@pytest.mark.parametrize(
    "name", ["user-notifier", "orders-local-user-notifier-dlq", "orders-local-user-notifier"]
)
def test_one_queue_is_named_by_its_service_or_either_queues_name(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = deployed(dead={"user-notifier": 1, "promotions": 1})
    status, lines = run(sqs, "--queue", name, capsys=capsys)
    assert status == 0
    assert lines[-1] == "redriven=1 queues=1 waiting=1"
    assert len(sqs.queues["orders-local-promotions-dlq"].messages) == 1  # not asked for


def test_the_sam_paths_queues_are_chosen_by_path(capsys: pytest.CaptureFixture[str]) -> None:
    sqs = deployed("orders-sam-local", dead={"user-notifier": 1})
    status, lines = run(sqs, "--path", "sam", "--queue", "user-notifier", capsys=capsys)
    assert (status, lines[-1]) == (0, "redriven=1 queues=1 waiting=1")


def test_without_move_tasks_each_message_is_sent_back_with_its_attributes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an SQS endpoint that does not implement StartMessageMoveTask
    sqs = deployed(dead={"user-notifier": 2})
    sqs.move_tasks = False
    status, lines = run(sqs, "--queue", "user-notifier", capsys=capsys)
    # THEN every message is moved, body and attributes as they were
    assert (status, lines[-1]) == (0, "redriven=2 queues=1 waiting=2")
    assert "(receive, send, delete)" in lines[-2]
    assert [m["Body"] for m in sqs.sent] == ['{"n": 0}', '{"n": 1}']
    assert all(m["MessageAttributes"] == {"type": {"DataType": "String"}} for m in sqs.sent)
    assert sqs.queues["orders-local-user-notifier-dlq"].messages == []


def test_a_queue_that_does_not_exist_is_an_error_and_nothing_moves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs = deployed(dead={"user-notifier": 1})
    status = redrive.main(["--queue", "no-such-service"], sqs=sqs, relay=None)
    captured = capsys.readouterr()
    assert status == 1
    assert "queue no-such-service does not exist" in captured.err
    assert "user-notifier" in captured.err  # the services it could have named
    assert captured.out == ""


def test_an_undeployed_stage_is_an_error_before_anything_moves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN only the SAM path deployed, and one dead letter in it
    sqs = deployed("orders-sam-local", dead={"user-notifier": 1})
    # WHEN every queue of the chalice path is asked for
    status = redrive.main([], sqs=sqs)
    # THEN it says which queue is missing and moves nothing
    assert status == 1
    assert "orders-local-restaurant-notifier-dlq does not exist" in capsys.readouterr().err
    assert len(sqs.queues["orders-sam-local-user-notifier-dlq"].messages) == 1


def test_a_failed_move_task_is_reported() -> None:
    sqs = deployed(dead={"user-notifier": 1})
    queue = redrive.dead_letter_queue(sqs, "orders-local-user-notifier-dlq")
    sqs.tasks[queue.arn] = {"Status": "FAILED", "FailureReason": "AccessDenied"}
    sqs.start_message_move_task = lambda SourceArn: {"TaskHandle": "h"}  # type: ignore[method-assign]
    with pytest.raises(redrive.RedriveError, match=r"FAILED \(AccessDenied\)"):
        redrive.move_with_task(sqs, queue, timeout=1, sleep=lambda _: None)


def test_the_relays_dead_letters_are_replayed_from_the_stream_with_the_items_as_stored_now(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a batch of the stream (its records 101 and 102) the relay gave up on: order o-2's
    # event item was broken, and an operator has since corrected it in the table
    stored = [event_item("o-1", "fine-1"), event_item("o-2", "broken"), event_item("o-3", "fine-3")]
    stream = FakeStream([*stored, event_item("o-4", "fine-4")])
    table = FakeTable(stored[0], event_item("o-2", "corrected"), stored[2])
    function = FakeRelayFunction()
    sqs = deployed()
    sqs.queues["orders-local-relay-dlq"].messages.append(batch_failed(101, 102))
    # WHEN the operator redrives the relay's dead-letter queue
    status, lines = run(
        sqs, "--queue", "relay", capsys=capsys, relay=relay_of(stream, table, function)
    )
    # THEN exactly that batch's records went through the relay, as the table holds them now
    assert function.relayed == ["corrected", "fine-3"]
    assert (status, lines[-1]) == (0, "redriven=1 queues=1 waiting=1")
    assert sqs.queues["orders-local-relay-dlq"].messages == []


def test_a_relay_dead_letter_that_still_fails_is_reported_and_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a dead letter whose event item is still broken, and one the stream no longer keeps
    broken = [event_item("o-1", "broken")]
    sqs = deployed()
    sqs.queues["orders-local-relay-dlq"].messages.append(batch_failed(100, 100))
    relay = relay_of(FakeStream(broken), FakeTable(*broken), FakeRelayFunction())
    # WHEN the operator redrives it
    status, lines = run(sqs, "--queue", "relay", capsys=capsys, relay=relay)
    # THEN it is reported, named, and stays in the queue, visible for the next look
    assert status == 1
    assert lines[-1] == "redriven=0 queues=1 waiting=1 not_replayed=1"
    assert "still fails on 1 record(s): pk=o-1 sk=EVENT#000001" in lines[-2]
    assert len(sqs.queues["orders-local-relay-dlq"].messages) == 1
    assert sqs.hidden == set()
    # AND once the stream no longer keeps its records, it says so
    trimmed = relay_of(FakeStream(broken, trimmed=True), FakeTable(), FakeRelayFunction())
    status, lines = run(sqs, "--queue", "relay", capsys=capsys, relay=trimmed)
    assert status == 1 and "the stream no longer holds these records" in lines[-2]
