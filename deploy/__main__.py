"""``python -m deploy {up,down,sam-up,sam-down,render} [--stage NAME]``.

- ``up``: the stage's infrastructure stack (``deploy/template.py``), then
  ``chalice deploy`` with the stack's outputs as the functions' environment and roles
  (in ``build/chalice/<prefix>/``: ``deploy/chalice_app.py``), then the stage's API throttling
  on the deployed API stage (``deploy/api_throttling.py``: Chalice has no setting for it).
- ``sam-up``: the same infrastructure merged into ``chalice package`` output, one stack.
- ``down`` / ``sam-down``: delete what ``up`` / ``sam-up`` made.
- ``render``: print the infrastructure template of a path (no cloud needed).

With ``AWS_ENDPOINT_URL`` (or ``LOCALSTACK_ENDPOINT``) set, everything goes to that
local cloud; without it, to the AWS account of your usual credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

import boto3

from chalicelib import settings
from chalicelib.adapters import dynamodb_orders
from chalicelib.functions import FUNCTIONS
from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import (
    api_throttling,
    chalice_app,
    cloudformation,
    event_sources,
    package,
    table_indexes,
    template,
)
from deploy.stages import (
    PROJECT,
    Deployment,
    DeployPath,
    aws_environment,
    build_lock,
    development_issuer_trusted,
    load_stage,
)
from localdev import durable_runner


def progress(began: float, message: str) -> None:
    print(f"[{time.monotonic() - began:5.1f}s] {message}", file=sys.stderr, flush=True)


def up(deployment: Deployment, session: Any, env: dict[str, str]) -> dict[str, Any]:
    began = time.monotonic()
    account = session.client("sts").get_caller_identity()["Account"]
    url = package.upload_stack_template(
        session.client("s3"), account, session.region_name, deployment, template.render(deployment)
    )
    stack_outputs = cloudformation.deploy_stack(
        session.client("cloudformation"), deployment.stack_name, None, template_url=url
    )
    progress(began, f"stack {deployment.stack_name} up to date")
    _add_missing_indexes(session, env, stack_outputs)
    chalice_app.render_project(deployment, stack_outputs)
    lambda_client = session.client("lambda")
    apigateway = session.client("apigateway")
    ran = chalice_app.deploy_if_changed(deployment, env, lambda_client, apigateway)
    progress(began, "chalice deploy done" if ran else "chalice deploy: nothing changed")
    app = chalice_app.deployed(deployment)
    throttling = deployment.stage.api_throttling
    if api_throttling.apply(apigateway, app.rest_api_id, chalice_app.API_STAGE, throttling):
        progress(began, f"API stage throttled at {throttling}")
    handlers = [app.function_arns[f.name] for f in FUNCTIONS if f.reads_batches]
    stream_settings = template.relay_stream_bounds(deployment) | {
        "DestinationConfig": {
            "OnFailure": {"Destination": stack_outputs[template.RELAY_DEAD_LETTERS_ARN]}
        }
    }
    if event_sources.report_batch_item_failures(lambda_client, handlers, ran, stream_settings):
        progress(began, "SQS and stream mappings report partial batch failures; stream bounded")
    return _result(deployment, stack_outputs, app.rest_api_id, app.rest_api_url, env) | {
        "deployed_with": "CloudFormation stack + chalice deploy",
        "functions": app.function_arns,
    }


def sam_up(deployment: Deployment, session: Any, env: dict[str, str]) -> dict[str, Any]:
    began = time.monotonic()
    if template.durable_runner_endpoint(deployment) is not None:
        # The local stage's durable function runs under AWS's local runner (docs/durable.md).
        durable_runner.start(env["AWS_ENDPOINT_URL"])
    out = package.build(deployment, env)
    progress(began, "chalice package --merge-template done")
    account = session.client("sts").get_caller_identity()["Account"]
    url = package.package(session.client("s3"), account, session.region_name, deployment, out)
    progress(began, "code and template uploaded")
    stack_outputs = cloudformation.deploy_stack(
        session.client("cloudformation"), deployment.stack_name, None, template_url=url
    )
    progress(began, f"stack {deployment.stack_name} up to date")
    _add_missing_indexes(session, env, stack_outputs)
    result = _result(
        deployment, stack_outputs, stack_outputs["RestAPIId"], stack_outputs["EndpointURL"], env
    )
    return result | {"deployed_with": "chalice package + CloudFormation (SAM)"}


def _add_missing_indexes(session: Any, env: dict[str, str], stack_outputs: dict[str, str]) -> None:
    if env.get("AWS_ENDPOINT_URL"):  # only the local cloud's CloudFormation leaves them out
        table = stack_outputs[template.output_key(settings.ORDERS_TABLE)]
        added = table_indexes.add_missing_indexes(
            session.client("dynamodb"), table, dynamodb_orders.INDEXES
        )
        if added:
            print(f"indexes added to {table}: {', '.join(added)}", file=sys.stderr)


def down(deployment: Deployment, session: Any, env: dict[str, str]) -> None:
    if deployment.path is DeployPath.CHALICE:
        chalice_app.delete(deployment, env)
    # Both paths keep their templates (and the SAM path its code) in the stage's bucket.
    account = session.client("sts").get_caller_identity()["Account"]
    package.empty_and_delete_bucket(session.client("s3"), account, deployment)
    cloudformation.delete_stack(session.client("cloudformation"), deployment.stack_name)
    deployment.outputs_file.unlink(missing_ok=True)


def _result(
    deployment: Deployment,
    stack_outputs: dict[str, str],
    rest_api_id: str,
    aws_api_url: str,
    env: dict[str, str],
) -> dict[str, Any]:
    endpoint = env.get("AWS_ENDPOINT_URL")
    api_url = (
        # LocalStack serves every REST API under its own gateway.
        f"{endpoint.rstrip('/')}/restapis/{rest_api_id}/api/_user_request_"
        if endpoint
        else aws_api_url.rstrip("/")
    )
    environment = template.function_environment(deployment)
    value = {variable: stack_outputs[template.output_key(variable)] for variable in environment}
    return {
        "stage": deployment.stage.name,
        "prefix": deployment.prefix,
        "stack": deployment.stack_name,
        "api_url": api_url,
        "state_machine_arn": value[settings.ORDER_FLOW_STATE_MACHINE],
        "events_topic_arn": value[settings.ORDER_EVENTS_TOPIC],
        "notifications_topic_arn": value[settings.NOTIFICATIONS_TOPIC],
        "orders_table": value[settings.ORDERS_TABLE],
        "vouchers_table": value[settings.VOUCHERS_TABLE],
        "queues": {s.service: s.queue_for(deployment.prefix) for s in SUBSCRIPTIONS},
    }


def one_deploy_at_a_time(deployment: Deployment) -> contextlib.AbstractContextManager[None]:
    """Two deploys of one deployment at once would race on its stack and Chalice's record
    (``make test`` warms up while its tests may ask too): the second waits, then finds it done."""
    return build_lock(f"deploy-{deployment.prefix}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "sam-up", "sam-down", "render"])
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--path", choices=[p.value for p in DeployPath], default="chalice", help="with render"
    )
    args = parser.parse_args(argv)
    stage = load_stage(args.stage)
    sam = args.command.startswith("sam-") or (args.command == "render" and args.path == "sam")
    deployment = Deployment(stage, DeployPath.SAM if sam else DeployPath.CHALICE)
    if args.command in ("up", "sam-up", "render"):
        development_issuer_trusted(stage)  # refuses an AWS stage that names no issuer's keys
    if args.command == "render":
        print(json.dumps(template.render(deployment), indent=2))
        return 0

    if not stage.is_local and "CHANGEME" in json.dumps(stage.auth.__dict__):
        raise SystemExit(
            f"stage {stage.name}: set its auth (issuer, audience, jwks_url, role_claim) in "
            "deploy/stages.json to your token issuer first (README, Security)"
        )
    env = aws_environment()
    if stage.is_local and not env.get("AWS_ENDPOINT_URL"):
        raise SystemExit(
            f"stage {stage.name} is for the local cloud: set AWS_ENDPOINT_URL "
            "(make deploy STAGE=... does), or choose an AWS stage"
        )
    os.environ.update(env)
    session = boto3.Session()
    with one_deploy_at_a_time(deployment):
        if args.command in ("down", "sam-down"):
            down(deployment, session, env)
            return 0
        result = (sam_up if sam else up)(deployment, session, env)
        deployment.outputs_file.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("stage", "deployed_with", "api_url")}, indent=2))
    print(f"outputs written to {deployment.outputs_file.relative_to(PROJECT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
