"""``python -m deploy {up,down,sam-up,sam-down} [--stage NAME]``.

With ``AWS_ENDPOINT_URL`` (or ``LOCALSTACK_ENDPOINT``) set, everything goes to that
local cloud; without it, to the AWS account of your usual credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3

from chalicelib.entrypoints.orchestration import TASKS
from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import asl, chalice_app, infrastructure
from deploy.settings import ASL, PROJECT, Stage, aws_environment, load_stage

OUTPUTS = PROJECT / "build"


def up(stage: Stage, aws: infrastructure.Clients, env: dict[str, str]) -> dict[str, Any]:
    infrastructure.ensure_tables(aws, stage)
    topics = infrastructure.ensure_topics(aws, stage)
    infrastructure.ensure_service_queues(aws, stage, topics[stage.events_topic])
    state_machine_arn = infrastructure.arn(aws, "states", f"stateMachine:{stage.state_machine}")
    chalice_app.set_stage_environment(
        stage,
        {
            "ORDERS_TABLE_NAME": stage.orders_table,
            "VOUCHERS_TABLE_NAME": stage.vouchers_table,
            "ORDER_EVENTS_TOPIC_ARN": topics[stage.events_topic],
            "NOTIFICATIONS_TOPIC_ARN": topics[stage.notifications_topic],
            "ORDER_FLOW_STATE_MACHINE_ARN": state_machine_arn,
        },
    )
    chalice_app.chalice("deploy", stage, env)
    app = chalice_app.deployed(stage)
    handlers = [app.function_arns[name] for name in _sqs_handler_names()]
    infrastructure.report_batch_item_failures(aws, handlers)
    task_arns = {
        placeholder: app.function_arns[task.function_name] for placeholder, task in TASKS.items()
    }
    definition = asl.fill(ASL.read_text(), task_arns)
    deployed_arn = infrastructure.ensure_state_machine(
        aws, stage, definition, sorted(task_arns.values())
    )
    if deployed_arn != state_machine_arn:
        raise SystemExit(
            f"state machine ARN {deployed_arn} is not the expected {state_machine_arn}"
        )
    return {
        "stage": stage.name,
        "deployed_with": "chalice deploy",
        "api_url": _api_url(app.rest_api_id, app.rest_api_url, env),
        "state_machine_arn": state_machine_arn,
        "events_topic_arn": topics[stage.events_topic],
        "notifications_topic_arn": topics[stage.notifications_topic],
        "orders_table": stage.orders_table,
        "vouchers_table": stage.vouchers_table,
        "queues": {s.service: s.queue_for(stage.resource_prefix) for s in SUBSCRIPTIONS},
        "functions": app.function_arns,
    }


def down(stage: Stage, aws: infrastructure.Clients, env: dict[str, str]) -> None:
    if (PROJECT / ".chalice" / "deployed" / f"{stage.name}.json").exists():
        chalice_app.chalice("delete", stage, env)
    infrastructure.teardown(aws, stage)


def _sqs_handler_names() -> list[str]:
    from app import app

    return [source.name for source in app.event_sources]


def _api_url(rest_api_id: str, aws_url: str, env: dict[str, str]) -> str:
    endpoint = env.get("AWS_ENDPOINT_URL")
    if endpoint:
        # LocalStack serves every REST API under its own gateway.
        return f"{endpoint.rstrip('/')}/restapis/{rest_api_id}/api/_user_request_"
    return aws_url.rstrip("/")


def outputs_path(stage: Stage) -> Path:
    return OUTPUTS / f"outputs-{stage.resource_prefix}-{stage.name}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "sam-up", "sam-down"])
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)

    env = aws_environment()
    os.environ.update(env)
    stage = load_stage(args.stage)
    aws = infrastructure.Clients(boto3.Session())

    if args.command in {"sam-up", "sam-down"}:
        from deploy import sam

        stage = stage.with_prefix(f"{stage.resource_prefix}-sam")
        if args.command == "sam-down":
            sam.down(stage, aws)
            outputs_path(stage).unlink(missing_ok=True)
            return 0
        result = sam.up(stage, aws, env)
    elif args.command == "down":
        down(stage, aws, env)
        outputs_path(stage).unlink(missing_ok=True)
        return 0
    else:
        result = up(stage, aws, env)

    OUTPUTS.mkdir(exist_ok=True)
    outputs_path(stage).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("stage", "deployed_with", "api_url")}, indent=2))
    print(f"outputs written to {outputs_path(stage).relative_to(PROJECT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
