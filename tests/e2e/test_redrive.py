"""End to end: nothing stuck. A dead-lettered event, redriven once its cause is fixed, finishes
its order; and the dead-letter queue's alarm went off while it waited.

The scenario begins with the session (``slow_scenarios``, ``tests/e2e/dead_letters.py``): on
the SAM deployment, an order is accepted while the user notifier is misconfigured, so its
``order_accepted`` is retried, then dead-lettered; then the configuration is put back. This test
does what an operator would: look at the alarm, count the dead letters, redrive them with
``python -m tools.redrive``, and see the order through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.subscriptions import USER_NOTIFIER
from deploy import template
from localdev.orders_api import HAPPY_PATH, eventually
from tests.e2e.conftest import PROJECT, SCENARIOS, SlowScenarios
from tests.e2e.dead_letters import DEAD_LETTERED_WITHIN, SAM_LOCAL, switch_sweeper_on

pytestmark = [pytest.mark.e2e, SCENARIOS]

# SQS reports queue depths to CloudWatch every minute, and the alarm looks every minute.
ALARM_WITHIN = 150


def redrive(cloud: Any, *arguments: str) -> list[str]:
    """``python -m tools.redrive --stage local --path sam ...`` as an operator runs it; stdout."""
    completed = subprocess.run(
        [sys.executable, "-m", "tools.redrive", "--stage", "local", "--path", "sam", *arguments],
        cwd=PROJECT,
        env=os.environ | cloud.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout.splitlines()


def test_a_dead_lettered_event_redriven_after_its_cause_is_fixed_finishes_the_order(
    local_cloud: Any, slow_scenarios: SlowScenarios
) -> None:
    # GIVEN an accepted order whose order_accepted the misconfigured user notifier failed on
    # until it was dead-lettered; the configuration has since been put back
    stuck = slow_scenarios.dead_lettered.result(timeout=DEAD_LETTERED_WITHIN + 120)
    # (the step could not record that the customer is told: the order waits, accepted)
    assert stuck.status_when_dead_lettered == "ACCEPTED"

    def customer_told() -> list[dict[str, Any]]:
        about = f"{stuck.order_id}/customer/accepted"
        return [n for n in stuck.notifications.drain() if n.get("notification_id") == about]

    # (retried first: received max_receive_count times, a visibility timeout apart)
    retries = SAM_LOCAL.stage.max_receive_count - 1
    visibility = template.queue_visibility_timeout_seconds(SAM_LOCAL, USER_NOTIFIER)
    assert stuck.seconds_to_dead_letter >= retries * visibility
    api = stuck.api
    assert customer_told() == []  # stuck: nobody told the customer, and nothing retries it now
    # AND the dead-letter queue's alarm went off
    alarm_name = f"{SAM_LOCAL.prefix}-user-notifier-dead-letters"
    cloudwatch = local_cloud.client("cloudwatch")
    eventually(
        lambda: cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]["StateValue"]
        == "ALARM",
        ALARM_WITHIN,
        f"{alarm_name} in ALARM",
        every=2,
    )
    # WHEN the operator counts what waits, without moving it
    counted = redrive(local_cloud, "--queue", "user-notifier", "--dry-run")
    waiting = int(counted[-1].split("waiting=")[1])
    assert waiting >= 1 and counted[-1].startswith("redriven=0 queues=1 ")
    # AND redrives it
    moved = redrive(local_cloud, "--queue", "user-notifier")
    # THEN every message that waited went back to the user notifier's queue
    assert moved[-1] == f"redriven={waiting} queues=1 waiting={waiting}", moved
    assert f"{stuck.dead_letter_queue}: moved {waiting} " in "\n".join(moved)
    # AND the customer is told, once, and the restaurant can complete the order
    eventually(customer_told, 60, f"the customer of {stuck.order_id} told")
    assert len(customer_told()) == 1
    assert api.act(stuck.order_id, "complete").status == 202
    completed = api.wait_for(stuck.order_id, "COMPLETED")
    assert [entry["type"] for entry in completed["timeline"]] == HAPPY_PATH
    # AND nothing waits in the dead-letter queue any more
    assert redrive(local_cloud, "--queue", "user-notifier", "--dry-run")[-1].endswith(" waiting=0")
    stuck.notifications.close()
    switch_sweeper_on(local_cloud, stuck.sweeper_schedules)  # the scenario switched it off
