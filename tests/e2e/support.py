"""Observing the deployed system from the outside: taps on its topics."""

from __future__ import annotations

import json
from typing import Any


def queue_url(cloud: Any, name: str) -> str:
    return str(cloud.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


class Tap:
    """An SQS queue subscribed to a topic with no filter: what was really delivered.

    A FIFO topic's tap is a FIFO queue (what AWS requires of a FIFO topic's subscribers).
    """

    def __init__(self, cloud: Any, topic_arn: str, name: str) -> None:
        self.sqs = cloud.client("sqs")
        self.sns = cloud.client("sns")
        fifo = {"FifoQueue": "true"} if topic_arn.endswith(".fifo") else {}
        self.url = self.sqs.create_queue(
            QueueName=name + (".fifo" if fifo else ""), Attributes=fifo
        )["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.subscription = self.sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
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
