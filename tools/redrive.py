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
    }
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


def redrive(
    sqs: Any,
    names: list[str],
    dry_run: bool,
    timeout: float = 300,
    sleep: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
) -> tuple[int, int]:
    """Report and (unless ``dry_run``) move back the dead letters; (moved, waiting) in all."""
    queues = [dead_letter_queue(sqs, name) for name in names]  # every name checked first
    moved_in_all = waiting_in_all = 0
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
    return moved_in_all, waiting_in_all


def main(argv: list[str] | None = None, sqs: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.redrive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", default="local")
    parser.add_argument("--path", choices=[p.value for p in DeployPath], default="chalice")
    parser.add_argument(
        "--queue", metavar="NAME", help="a service (user-notifier) or a queue's name"
    )
    parser.add_argument("--dry-run", action="store_true", help="only count what waits")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds a move may take (default 300)"
    )
    args = parser.parse_args(argv)

    stage = load_stage(args.stage)
    if sqs is None:
        env = aws_environment()
        if stage.is_local and not env.get("AWS_ENDPOINT_URL"):
            parser.error(f"stage {stage.name} is on the local cloud: set AWS_ENDPOINT_URL")
        os.environ.update(env)
        sqs = boto3.client("sqs")
    names = queue_names(Deployment(stage, DeployPath(args.path)), args.queue)
    try:
        moved, waited = redrive(sqs, names, args.dry_run, args.timeout)
    except RedriveError as error:
        services = ", ".join(s.service for s in SUBSCRIPTIONS)
        hint = f"is stage {stage.name} deployed ({args.path} path)? Services: {services}"
        print(f"redrive: {error} ({hint})", file=sys.stderr)
        return 1
    print(f"redriven={moved} queues={len(names)} waiting={waited}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
