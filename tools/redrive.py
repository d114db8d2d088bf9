"""Move dead letters back to the queues they came from, once their cause is fixed.

    python -m tools.redrive [--stage local] [--path chalice|sam] [--queue NAME] [--dry-run]

For every dead-letter queue of the deployment, or only NAME's (a service such as
``user-notifier``, or a queue's name: the dead-letter queue's or its source queue's), print how
many messages wait in it; with ``--dry-run`` stop there. Otherwise move them back to their
source queue with SQS's StartMessageMoveTask, wait until the move has finished
(ListMessageMoveTasks) and print what moved. Where an SQS endpoint does not support move tasks,
each message is received, sent to its source queue (body and attributes kept) and deleted.
The last line of stdout is the summary: ``redriven=N queues=M waiting=W``. A queue that does not
exist, or is nobody's dead-letter queue, is an error (exit status 1).

The outbox relay's dead-letter queue (``--queue relay``) holds no messages to move back: the
orders table's stream sends it the position of each batch the relay still failed on after its
retries (``DDBStreamBatchInfo``: shard, first and last sequence number). Each is replayed: its
records are read back from the stream (which keeps them 24 hours), each inserted event item is
read from the table as it is now (so an item an operator corrected is relayed corrected), and
the deployed relay function is invoked with them, as the stream would have. A message is
deleted only when every record of it was relayed; one that cannot be (the stream no longer
holds it, its event item is gone, the relay still fails) stays, and is reported; the summary
then ends ``not_replayed=K`` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import template
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage

NO_SUCH_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
# What an SQS endpoint answers to an operation it does not implement.
UNSUPPORTED = {
    "AWS.SimpleQueueService.UnsupportedOperation",
    "UnsupportedOperation",
    "InvalidAction",
    "NotImplemented",
}
FINISHED = {"COMPLETED", "FAILED", "CANCELLED"}
# What --queue calls the outbox relay's dead-letter queue.
RELAY_SERVICE = "relay"
# What the stream answers for records it no longer keeps, or a shard that is gone.
NO_LONGER_IN_STREAM = {"TrimmedDataAccessException", "ResourceNotFoundException"}
# Reads of the stream (each up to 1,000 records) to find a batch's last record, at most.
STREAM_READS = 100
# How long a relay dead letter being replayed stays hidden from others.
REPLAY_VISIBILITY_SECONDS = 120


class RedriveError(Exception):
    """Something an operator must look at: the message says what."""


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    url: str
    arn: str
    source_url: str  # the queue whose redrive policy names this one


def _queue_url(sqs: Any, name: str, what: str) -> str:
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as error:
        if error.response["Error"]["Code"] in NO_SUCH_QUEUE:
            raise RedriveError(f"{what} {name} does not exist") from None
        raise


def _arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def dead_letter_queue(sqs: Any, name: str) -> DeadLetterQueue:
    """The dead-letter queue called ``name``, or the one of the queue called ``name``."""
    url = _queue_url(sqs, name, "queue")
    sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    if len(sources) == 1:
        return DeadLetterQueue(name, url, _arn(sqs, url), sources[0])
    if len(sources) > 1:
        raise RedriveError(f"{name} is the dead-letter queue of several queues: {sources}")
    # Not a dead-letter queue: a source queue, whose redrive policy names its dead-letter queue.
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    redrive_policy = policy.get("Attributes", {}).get("RedrivePolicy")
    if not redrive_policy:
        raise RedriveError(f"{name} is neither a dead-letter queue nor has one")
    dead_letters_arn = str(json.loads(redrive_policy)["deadLetterTargetArn"])
    dead_letters = dead_letters_arn.rsplit(":", 1)[1]
    dead_letters_url = _queue_url(sqs, dead_letters, "dead-letter queue")
    return DeadLetterQueue(dead_letters, dead_letters_url, dead_letters_arn, url)


def queue_names(deployment: Deployment, queue: str | None) -> list[str]:
    """The dead-letter queues to look at: every one of the deployment, or the one named."""
    by_service = {
        s.service: template.dead_letter_queue_name(s.queue_for(deployment.prefix))
        for s in SUBSCRIPTIONS
    } | {RELAY_SERVICE: template.relay_dead_letter_queue_name(deployment)}
    if queue is None:
        return list(by_service.values())
    return [by_service.get(queue, queue)]


def waiting(sqs: Any, queue: DeadLetterQueue) -> int:
    """Messages ready to move (not those someone is looking at right now)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def move_with_task(
    sqs: Any, queue: DeadLetterQueue, timeout: float, sleep: Callable[[float], None]
) -> int:
    """StartMessageMoveTask back to the source queue; waits for it. Returns the count moved."""
    sqs.start_message_move_task(SourceArn=queue.arn)  # no DestinationArn: back to the source
    deadline = time.monotonic() + timeout
    while True:
        (task,) = sqs.list_message_move_tasks(SourceArn=queue.arn, MaxResults=1)["Results"]
        if task["Status"] in FINISHED:
            break
        if time.monotonic() > deadline:
            raise RedriveError(f"{queue.name}: the move task is still {task['Status']}")
        sleep(0.2)
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    if task["Status"] != "COMPLETED":
        reason = task.get("FailureReason", "no reason given")
        raise RedriveError(f"{queue.name}: move task {task['Status']} ({reason}) after {moved}")
    return moved


def move_one_by_one(sqs: Any, queue: DeadLetterQueue) -> int:
    """Receive, send to the source queue (body and attributes kept), delete; until empty."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["AWSTraceHeader"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sent: dict[str, Any] = {"QueueUrl": queue.source_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                sent["MessageAttributes"] = message["MessageAttributes"]
            trace = message.get("Attributes", {}).get("AWSTraceHeader")
            if trace:
                sent["MessageSystemAttributes"] = {
                    "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
                }
            sqs.send_message(**sent)
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


@dataclass(frozen=True)
class RelayReplay:
    """What replaying the relay's dead letters takes: its queue, the relay function and the
    orders table of the deployment, and the clients that reach them."""

    queue_name: str
    function_name: str
    table: str
    lambda_client: Any
    streams: Any  # dynamodbstreams
    dynamodb: Any

    @classmethod
    def of(cls, deployment: Deployment, session: Any) -> RelayReplay:
        return cls(
            template.relay_dead_letter_queue_name(deployment),
            deployment.function_name(template.RELAY),
            deployment.prefix,  # the orders table is named after the deployment
            session.client("lambda"),
            session.client("dynamodbstreams"),
            session.client("dynamodb"),
        )


class NotReplayedError(Exception):
    """A relay dead letter that cannot be replayed now: the message says why."""


def stream_batch(streams: Any, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a ``DDBStreamBatchInfo`` (first to last sequence number), as the stream
    hands them to the relay."""
    end = int(batch["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch["streamArn"],
            ShardId=batch["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch["startSequenceNumber"],
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        for _ in range(STREAM_READS):
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > end:
                    return records
                records.append(_as_lambda_hands_it(record, batch["streamArn"]))
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == end:
                return records
            iterator = page.get("NextShardIterator")
            if not iterator:
                break
    except ClientError as error:
        if error.response["Error"]["Code"] not in NO_LONGER_IN_STREAM:
            raise
    raise NotReplayedError(
        "the stream no longer holds these records (it keeps them 24 hours): find the orders' "
        "event items in the table by the time of the failure"
    )


def _as_lambda_hands_it(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    stream_record = dict(record["dynamodb"])
    created = stream_record.get("ApproximateCreationDateTime")
    if created is not None and not isinstance(created, int | float):
        stream_record["ApproximateCreationDateTime"] = created.timestamp()
    return record | {"eventSourceARN": stream_arn, "dynamodb": stream_record}


def as_the_table_holds_it(dynamodb: Any, table: str, record: dict[str, Any]) -> dict[str, Any]:
    """An inserted item's record with the item as the table holds it now."""
    if record["eventName"] != "INSERT":
        return record  # the relay relays inserts only
    keys = record["dynamodb"]["Keys"]
    item = dynamodb.get_item(TableName=table, Key=keys, ConsistentRead=True).get("Item")
    if item is None:
        raise NotReplayedError(f"item {_named(keys)} is gone from table {table}")
    return record | {"dynamodb": record["dynamodb"] | {"NewImage": item}}


def _named(keys: dict[str, Any]) -> str:
    return " ".join(f"{name}={value['S']}" for name, value in sorted(keys.items()))


def replay(relay: RelayReplay, body: str) -> int:
    """Relay again the records one dead letter names; returns how many. NotReplayedError if
    any cannot be."""
    batch = json.loads(body)["DDBStreamBatchInfo"]
    records = [
        as_the_table_holds_it(relay.dynamodb, relay.table, record)
        for record in stream_batch(relay.streams, batch)
    ]
    answer = relay.lambda_client.invoke(
        FunctionName=relay.function_name, Payload=json.dumps({"Records": records}).encode()
    )
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):  # it fails so when every record failed (Powertools)
        failed = {r["dynamodb"]["SequenceNumber"] for r in records}
    else:
        failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures", [])}
    if failed:
        still = [
            _named(r["dynamodb"]["Keys"])
            for r in records
            if r["dynamodb"]["SequenceNumber"] in failed
        ]
        raise NotReplayedError(
            f"the relay still fails on {len(still)} record(s): {', '.join(still)} "
            "(its logs say why)"
        )
    return len(records)


def replay_relay_dead_letters(
    sqs: Any, relay: RelayReplay, url: str, out: Callable[[str], None]
) -> tuple[int, int]:
    """Replay every dead letter of the relay's queue; (replayed, not replayed). One that cannot
    be replayed is reported and stays (visible again at once)."""
    replayed, kept = 0, []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                records = replay(relay, message["Body"])
            except NotReplayedError as error:
                batch = json.loads(message["Body"])["DDBStreamBatchInfo"]
                out(
                    f"{relay.queue_name}: not replayed: records {batch['startSequenceNumber']}.."
                    f"{batch['endSequenceNumber']} of shard {batch['shardId']}: {error}"
                )
                kept.append(message["ReceiptHandle"])
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            out(f"{relay.queue_name}: replayed {records} record(s) through {relay.function_name}")
            replayed += 1
    for receipt in kept:  # for the next look, after the cause is fixed
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return replayed, len(kept)


def redrive(
    sqs: Any,
    names: list[str],
    dry_run: bool,
    timeout: float = 300,
    sleep: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
    relay: RelayReplay | None = None,
) -> tuple[int, int, int]:
    """Report and (unless ``dry_run``) move back the dead letters, and replay the relay's
    (``relay``: its queue is among ``names``); (moved or replayed, waiting, not replayed)."""
    relay_url = None
    if relay is not None and relay.queue_name in names:
        names = [name for name in names if name != relay.queue_name]
        relay_url = _queue_url(sqs, relay.queue_name, "queue")
    queues = [dead_letter_queue(sqs, name) for name in names]  # every name checked first
    moved_in_all = waiting_in_all = not_replayed = 0
    if relay is not None and relay_url is not None:
        attributes = sqs.get_queue_attributes(
            QueueUrl=relay_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        waiting_in_all += count
        out(f"{relay.queue_name}: {count} waiting (batches of the orders table's stream)")
        if not dry_run and count:
            moved_in_all, not_replayed = replay_relay_dead_letters(sqs, relay, relay_url, out)
    for queue in queues:
        count = waiting(sqs, queue)
        waiting_in_all += count
        source = queue.source_url.rsplit("/", 1)[1]
        out(f"{queue.name}: {count} waiting (source queue {source})")
        if dry_run or count == 0:
            continue
        try:
            moved = move_with_task(sqs, queue, timeout, sleep)
            how = "StartMessageMoveTask"
        except ClientError as error:
            if error.response["Error"]["Code"] not in UNSUPPORTED:
                raise
            moved, how = move_one_by_one(sqs, queue), "receive, send, delete"
        out(f"{queue.name}: moved {moved} to {source} ({how})")
        moved_in_all += moved
    return moved_in_all, waiting_in_all, not_replayed


def main(argv: list[str] | None = None, sqs: Any = None, relay: RelayReplay | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.redrive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", default="local")
    parser.add_argument("--path", choices=[p.value for p in DeployPath], default="chalice")
    parser.add_argument(
        "--queue",
        metavar="NAME",
        help="a service (user-notifier), relay (the outbox relay's), or a queue's name",
    )
    parser.add_argument("--dry-run", action="store_true", help="only count what waits")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds a move may take (default 300)"
    )
    args = parser.parse_args(argv)

    stage = load_stage(args.stage)
    deployment = Deployment(stage, DeployPath(args.path))
    if sqs is None:
        env = aws_environment()
        if stage.is_local and not env.get("AWS_ENDPOINT_URL"):
            parser.error(f"stage {stage.name} is on the local cloud: set AWS_ENDPOINT_URL")
        os.environ.update(env)
        session = boto3.Session()
        sqs = session.client("sqs")
        relay = RelayReplay.of(deployment, session)
    names = queue_names(deployment, args.queue)
    try:
        moved, waited, not_replayed = redrive(sqs, names, args.dry_run, args.timeout, relay=relay)
    except RedriveError as error:
        services = ", ".join([*(s.service for s in SUBSCRIPTIONS), RELAY_SERVICE])
        hint = f"is stage {stage.name} deployed ({args.path} path)? Services: {services}"
        print(f"redrive: {error} ({hint})", file=sys.stderr)
        return 1
    summary = f"redriven={moved} queues={len(names)} waiting={waited}"
    if not_replayed:
        print(f"{summary} not_replayed={not_replayed}")
        print(
            f"redrive: {not_replayed} of the relay's dead letters could not be replayed; they "
            "stay in its queue (the lines above say why)",
            file=sys.stderr,
        )
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
