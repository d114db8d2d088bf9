"""Observing the deployed system from the outside: taps on its topics."""

from __future__ import annotations

from typing import Any

from localdev import topic_tap


def queue_url(cloud: Any, name: str) -> str:
    return str(cloud.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


class Tap(topic_tap.Tap):
    """A tap on one of the deployment's topics in the test's local cloud."""

    def __init__(self, cloud: Any, topic_arn: str, name: str) -> None:
        super().__init__(cloud.client("sqs"), cloud.client("sns"), topic_arn, name)
