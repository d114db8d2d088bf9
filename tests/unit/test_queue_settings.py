"""Unit tests of every stage's queue settings, as both deploy paths render them.

The rules (AWS's advice for SQS event sources): a message is received at least three times
before it is dead-lettered, and a queue's visibility timeout is at least six times its consumer's
function timeout (``chalicelib/functions.py``) on AWS stages, so a batch Lambda had to retry is
not handed out again while the first try may still run; twice on local stages, whose cloud
throttles nothing.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from chalicelib.functions import consumer_of
from chalicelib.subscriptions import SUBSCRIPTIONS, USER_NOTIFIER
from deploy import template
from deploy.stages import (
    MIN_RECEIVES_BEFORE_DEAD_LETTER,
    STAGES_FILE,
    Deployment,
    DeployPath,
    load_stage,
)

STAGES = sorted(json.loads(STAGES_FILE.read_text()))


def broken_rules(deployment: Deployment) -> list[str]:
    """What in the rendered queues breaks the rules above, one line per queue and rule."""
    resources = template.render(deployment)["Resources"]
    broken = []
    for subscription in SUBSCRIPTIONS:
        queue = resources[template.queue_id(subscription)]["Properties"]
        receives = queue["RedrivePolicy"]["maxReceiveCount"]
        if receives < MIN_RECEIVES_BEFORE_DEAD_LETTER:
            broken.append(f"{subscription.service}: dead-lettered after {receives} receives")
        consumer = consumer_of(subscription)
        assert consumer is not None, f"nothing consumes {subscription.service}"
        timeout = consumer.timeout.seconds(deployment.stage.is_local)
        # AWS's advice (6 x) on AWS stages; never less than twice the timeout anywhere.
        multiple = 2 if deployment.stage.is_local else 6
        if queue["VisibilityTimeout"] < multiple * timeout:
            broken.append(
                f"{subscription.service}: visibility {queue['VisibilityTimeout']} s "
                f"< {multiple} x {consumer.name}'s timeout {timeout} s"
            )
    return broken


@pytest.mark.parametrize("path", list(DeployPath))
@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_retries_three_times_and_outlasts_its_consumers(
    stage: str, path: DeployPath
) -> None:
    assert broken_rules(Deployment(load_stage(stage), path)) == []


def test_the_rules_catch_a_stage_that_dead_letters_after_two_receives() -> None:
    # GIVEN a stage that gives up after two receives
    hasty = dataclasses.replace(load_stage("local"), max_receive_count=2)
    # THEN every queue of it breaks the rule
    assert len(broken_rules(Deployment(hasty, DeployPath.CHALICE))) == len(SUBSCRIPTIONS)


@pytest.mark.parametrize("stage", STAGES)
def test_the_visibility_timeout_follows_the_consumers_declared_timeout(stage: str) -> None:
    # One source of truth: the function's timeout in chalicelib/functions.py, never a second number.
    deployment = Deployment(load_stage(stage), DeployPath.SAM)
    consumer = consumer_of(USER_NOTIFIER)
    assert consumer is not None
    timeout = consumer.timeout.seconds(deployment.stage.is_local)
    multiple = 2 if deployment.stage.is_local else 6
    assert (
        template.queue_visibility_timeout_seconds(deployment, USER_NOTIFIER) == multiple * timeout
    )
