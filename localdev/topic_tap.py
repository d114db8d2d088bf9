"""A tap on a topic: an SQS queue subscribed with no filter, to see what was really delivered."""

from __future__ import annotations

import json
from typing import Any


class Tap:
    """What a topic delivered, raw. A FIFO topic's tap is a FIFO queue (AWS requires it), so
    it receives what the topic delivers after its deduplication, as any subscriber would."""

    def __init__(
        self, sqs: Any, sns: Any, topic_arn: str, name: str, wait_seconds: int = 0
    ) -> None:
        self.sqs, self.sns = sqs, sns
        self.wait_seconds = wait_seconds
        fifo = {"FifoQueue": "true"} if topic_arn.endswith(".fifo") else {}
        self.url = sqs.create_queue(QueueName=name + (".fifo" if fifo else ""), Attributes=fifo)[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.subscription = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Everything delivered so far (until a receive comes back empty)."""
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=self.wait_seconds
            ).get("Messages", [])
            if not batch:
                return self.seen
            for message in batch:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def about(self, order_id: str) -> list[dict[str, Any]]:
        return [m for m in self.drain() if m.get("order_id") == order_id]

    def close(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.url)
