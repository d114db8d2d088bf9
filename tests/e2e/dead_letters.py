"""An order whose event was dead-lettered for a real cause, which is then fixed (test_redrive.py).

The cause: the user notifier of the SAM deployment is misconfigured, its orders table variable
naming a table that does not exist (a bad configuration change, as an operator could make), so
it cannot record that the customer is told their order was accepted. Its ``order_accepted``
fails on every receive and goes to the dead-letter queue: the order stays ACCEPTED, and nobody
is told; then the configuration is put back ("the cause is fixed"). Nothing in the code knows
about this test. The deployment's sweeper, which would tell the customer (and later expire the
delivery) on its own, is switched off for the scenario: it proves the operator's path, and
test_redrive.py switches it back on.

It runs on the SAM deployment, deployed when the session begins, so that the chalice
deployment's tests, which accept choreographed orders all the time, never meet the broken
notifier; the SAM tests wait until it is whole again (``sam_deployment`` in conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalicelib import settings
from chalicelib.functions import consumer_of
from chalicelib.subscriptions import USER_NOTIFIER, Subscription
from deploy import template
from deploy.stages import Deployment, DeployPath, load_stage
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.support import Tap

SAM_LOCAL = Deployment(load_stage("local"), DeployPath.SAM)


def dead_lettered_within(subscription: Subscription, path: DeployPath = DeployPath.CHALICE) -> int:
    """Seconds a failing message of the local stage takes to reach its dead-letter queue, at
    most: max_receive_count receives, each a visibility timeout apart, plus the pollers' pace."""
    deployment = Deployment(load_stage("local"), path)
    visibility = template.queue_visibility_timeout_seconds(deployment, subscription)
    return deployment.stage.max_receive_count * visibility + 60


DEAD_LETTERED_WITHIN = dead_lettered_within(USER_NOTIFIER, DeployPath.SAM)


@dataclass(frozen=True)
class DeadLettered:
    order_id: str
    api: OrdersApi  # the SAM deployment's, which placed the order
    status_when_dead_lettered: str
    dead_letter_queue: str
    seconds_to_dead_letter: float
    notifications: Tap  # what the SAM deployment told people, from before the accept on
    # The SAM deployment's sweeper schedules (rule -> its targets), off until the redrive is done.
    sweeper_schedules: dict[str, list[dict[str, Any]]]


def sweeper_schedules(cloud: Any, deployment: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The EventBridge rules that run the deployment's sweeper, with their targets."""
    function = f"{deployment['prefix']}-{template.SWEEPER}"
    arn = cloud.client("lambda").get_function(FunctionName=function)["Configuration"]
    events = cloud.client("events")
    rules = events.list_rule_names_by_target(TargetArn=arn["FunctionArn"])["RuleNames"]
    return {rule: events.list_targets_by_rule(Rule=rule)["Targets"] for rule in rules}


def switch_sweeper_off(cloud: Any, schedules: dict[str, list[dict[str, Any]]]) -> None:
    """Disable its rules and take their targets away: LocalStack 2026.3.0 still runs a
    disabled rule's schedule (its job reads only the targets); AWS needs the first alone."""
    events = cloud.client("events")
    for rule, targets in schedules.items():
        events.disable_rule(Name=rule)
        events.remove_targets(Rule=rule, Ids=[target["Id"] for target in targets])


def switch_sweeper_on(cloud: Any, schedules: dict[str, list[dict[str, Any]]]) -> None:
    events = cloud.client("events")
    for rule, targets in schedules.items():
        events.put_targets(Rule=rule, Targets=targets)
        events.enable_rule(Name=rule)


def user_notifier(deployment: dict[str, Any]) -> str:
    consumer = consumer_of(USER_NOTIFIER)
    assert consumer is not None
    return f"{deployment['prefix']}-{consumer.name}"


@contextmanager
def orders_table_missing(lambda_client: Any, function: str) -> Iterator[None]:
    """The function's orders table variable names a table that does not exist, until the
    block ends: then its configuration is what it was."""
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"][
        "Variables"
    ]
    broken = variables | {settings.ORDERS_TABLE: variables[settings.ORDERS_TABLE] + "-gone"}
    _configure(lambda_client, function, broken)
    try:
        yield
    finally:
        _configure(lambda_client, function, variables)


def _configure(lambda_client: Any, function: str, variables: dict[str, str]) -> None:
    lambda_client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables}
    )
    eventually(
        lambda: lambda_client.get_function_configuration(FunctionName=function).get(
            "LastUpdateStatus"
        )
        == "Successful",
        60,
        f"{function}'s configuration updated",
    )


def messages_about(sqs: Any, queue_url: str, order_id: str) -> list[dict[str, Any]]:
    """The queue's messages about the order, left in the queue (visible again at once)."""
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
    ).get("Messages", [])
    return [m for m in messages if order_id in m["Body"]]


def dead_letter_an_accepted_order(
    cloud: Any, sam_deployed: Future[dict[str, Any]], order: dict[str, Any]
) -> DeadLettered:
    """Once the SAM path is deployed, place and accept an order while its user notifier is
    misconfigured; the configuration is put back once the order's event is dead-lettered."""
    deployment = sam_deployed.result()
    api = OrdersApi(deployment["api_url"])
    sqs = cloud.client("sqs")
    dead_letter_queue = template.dead_letter_queue_name(
        USER_NOTIFIER.queue_for(deployment["prefix"])
    )
    dead_letters_url = sqs.get_queue_url(QueueName=dead_letter_queue)["QueueUrl"]
    schedules = sweeper_schedules(cloud, deployment)
    switch_sweeper_off(cloud, schedules)
    # Misconfigured before the order is placed (the notifier has nothing to do with it until
    # it is accepted), so that the accept follows the restaurant's notification at once: a
    # reconfiguration in between took the order past its restaurant deadline (20 s) on a
    # loaded machine.
    with orders_table_missing(cloud.client("lambda"), user_notifier(deployment)):
        order_id = api.place(order)
        notifications = Tap(
            cloud, deployment["notifications_topic_arn"], f"e2e-told-{order_id[:8]}"
        )
        api.wait_for(order_id, "RESTAURANT_NOTIFIED")
        accepted_at = time.monotonic()
        assert api.act(order_id, "accept").status == 202
        eventually(
            lambda: messages_about(sqs, dead_letters_url, order_id),
            DEAD_LETTERED_WITHIN,
            f"order_accepted of {order_id} in {dead_letter_queue}",
            every=1,
        )
        took = time.monotonic() - accepted_at
        status = api.order(order_id)["status"]
    return DeadLettered(order_id, api, status, dead_letter_queue, took, notifications, schedules)
