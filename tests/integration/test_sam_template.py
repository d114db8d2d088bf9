"""Integration test of the SAM path's template: really built by ``chalice package``, linted.

Needs no cloud; it does run ``chalice package`` (which fetches the functions'
dependencies) and ``cfn-lint``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entrypoints.orchestration import TASKS
from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import sam
from deploy.settings import ASL, load_stage

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.fixture(scope="module")
def built() -> Path:
    stage = load_stage("local").with_prefix("orders-sam")
    env = dict(os.environ) | {"AWS_DEFAULT_REGION": "us-east-1"}
    return sam.build(stage, env)


@pytest.fixture(scope="module")
def template(built: Path) -> dict[str, Any]:
    return dict(json.loads((built / "sam.json").read_text()))


def test_the_generated_template_passes_cfn_lint(built: Path) -> None:
    linted = subprocess.run(
        [str(CFN_LINT), str(built / "sam.json")], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_state_machine_uses_the_one_asl_file_with_every_substitution(
    built: Path, template: dict[str, Any]
) -> None:
    machine = template["Resources"]["OrderFlow"]["Properties"]
    assert (built / machine["DefinitionUri"]).resolve() == ASL.resolve()
    assert set(machine["DefinitionSubstitutions"]) == set(TASKS)
    for placeholder, task in TASKS.items():
        target = machine["DefinitionSubstitutions"][placeholder]["Fn::GetAtt"][0]
        assert template["Resources"][target]["Type"] == "AWS::Serverless::Function"
        assert template["Resources"][target]["Properties"]["Handler"].endswith(task.function_name)


def test_every_subscription_has_a_queue_a_dead_letter_queue_and_its_filter(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    subscriptions = {
        r["Properties"]["Endpoint"]["Fn::GetAtt"][0]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription"
    }
    for subscription in SUBSCRIPTIONS:
        queue_id = next(
            name
            for name, r in resources.items()
            if r["Type"] == "AWS::SQS::Queue"
            and r["Properties"]["QueueName"] == f"orders-sam-{subscription.service}"
        )
        queue = resources[queue_id]["Properties"]
        assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in resources
        assert subscriptions[queue_id]["FilterPolicy"] == subscription.filter_policy()
        assert subscriptions[queue_id]["RawMessageDelivery"] is True
        assert (queue["DelaySeconds"] > 0) == subscription.delayed_until_deadline


def test_every_sqs_handler_reports_batch_item_failures(template: dict[str, Any]) -> None:
    sources = [
        event["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
        for event in r["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert len(sources) == len(SUBSCRIPTIONS)
    assert all(s["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for s in sources)
