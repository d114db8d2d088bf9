"""``chalice deploy`` / ``chalice delete`` of a stage, fed by the infrastructure stack's outputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from deploy import function_package, template
from deploy.stages import CHALICE_CONFIG, PROJECT, Deployment

CHALICE = Path(sys.executable).with_name("chalice")
DEPLOYED = PROJECT / ".chalice" / "deployed"
# Lambda waiters that poll five times a second (botocore's FunctionUpdated waits 5 s a poll,
# which made each function update of `chalice deploy` cost 5-10 s).
BOTOCORE_DATA = Path(__file__).with_name("botocore_data")
# What Chalice packages: the app, and in vendor/ the libraries the functions import and nothing
# else (deploy/function_package.py). Every function create, upload and unzip pays for each
# megabyte of it (locally about 1.5 s a function for boto3's 18 MB, which the runtime has).
APP_SOURCES = ["app.py", "chalicelib", "vendor"]
# Chalice imports the app to package it: no bytecode from that into chalicelib/ (and the zip).
CHALICE_ENVIRONMENT = {"AWS_DATA_PATH": str(BOTOCORE_DATA), "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class DeployedApp:
    function_arns: dict[str, str]  # Chalice function name -> ARN
    rest_api_id: str
    rest_api_url: str


def write_stage_config(deployment: Deployment, stack_outputs: dict[str, str]) -> None:
    """The stage's environment and per-function roles in ``.chalice/config.json``.

    Values come from the stack's outputs; other keys of the stage (timeouts, ...) stay.
    """
    config = json.loads(CHALICE_CONFIG.read_text())
    stage = config["stages"].setdefault(deployment.stage.name, {})
    environment = template.function_environment(deployment)
    roles = {
        function: stack_outputs[template.role_id(function) + "Arn"]
        for function in template.FUNCTIONS
    }
    stage.update(
        {
            "api_gateway_stage": "api",
            "manage_iam_role": False,
            "iam_role_arn": roles[template.API_HANDLER],
            "environment_variables": {
                variable: stack_outputs[template.output_key(variable)] for variable in environment
            },
            # A function's own settings (a lambda_timeout, ...) stay; its role is the stack's.
            "lambda_functions": {
                function: stage.get("lambda_functions", {}).get(function, {})
                | {"iam_role_arn": arn}
                for function, arn in roles.items()
                if function != template.API_HANDLER
            },
        }
    )
    text = json.dumps(config, indent=2) + "\n"
    if CHALICE_CONFIG.read_text() != text:
        CHALICE_CONFIG.write_text(text)


def chalice(command: str, deployment: Deployment, env: dict[str, str], *arguments: str) -> None:
    """``chalice <command> --stage <stage> <arguments>``; its output only if it fails."""
    # Chalice zips every file under chalicelib/, stale bytecode caches too: prepare removes them.
    function_package.prepare()
    completed = subprocess.run(
        [str(CHALICE), command, "--stage", deployment.stage.name, *arguments],
        cwd=PROJECT,
        env=env | CHALICE_ENVIRONMENT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"chalice {command} failed:\n{completed.stdout}")


def deploy_if_changed(
    deployment: Deployment, env: dict[str, str], lambda_client: Any, apigateway: Any
) -> bool:
    """``chalice deploy`` unless the same code and config are deployed already; True if it ran."""
    function_package.prepare()
    marker = DEPLOYED / f"{deployment.stage.name}.fingerprint"
    fingerprint = _fingerprint(deployment)
    last = _last_deploy(deployment)
    present = 0 if last is None else _functions_present(last, lambda_client)
    if (
        marker.exists()
        and marker.read_text() == fingerprint
        and last is not None
        and present == len(last.function_arns) > 0
        and _api_present(last, apigateway)
    ):
        return False
    marker.unlink(missing_ok=True)
    if present == 0:
        # A new (or restarted) local cloud: what Chalice recorded is gone. Deploying against the
        # record would try to delete the relay's old stream mapping (a new table, a new stream
        # ARN) and fail on it; without the record, Chalice creates everything afresh.
        (DEPLOYED / f"{deployment.stage.name}.json").unlink(missing_ok=True)
    chalice("deploy", deployment, env)
    marker.write_text(fingerprint)
    return True


def delete(deployment: Deployment, env: dict[str, str]) -> None:
    if (DEPLOYED / f"{deployment.stage.name}.json").exists():
        chalice("delete", deployment, env)
    (DEPLOYED / f"{deployment.stage.name}.fingerprint").unlink(missing_ok=True)


def deployed(deployment: Deployment) -> DeployedApp:
    record = DEPLOYED / f"{deployment.stage.name}.json"
    if not record.exists():
        raise SystemExit(
            f"nothing deployed for stage {deployment.stage.name} ({record} is missing)"
        )
    resources = json.loads(record.read_text())["resources"]
    functions = {
        resource["name"]: resource["lambda_arn"]
        for resource in resources
        if resource["resource_type"] == "lambda_function"
    }
    api = next(r for r in resources if r["resource_type"] == "rest_api")
    return DeployedApp(functions, api["rest_api_id"], api["rest_api_url"])


def _fingerprint(deployment: Deployment) -> str:
    digest = hashlib.sha256()
    config = json.loads(CHALICE_CONFIG.read_text())
    settings = {k: v for k, v in config.items() if k != "stages"}
    settings["stage"] = config["stages"][deployment.stage.name]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for source in APP_SOURCES:
        path = PROJECT / source
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(PROJECT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _last_deploy(deployment: Deployment) -> DeployedApp | None:
    try:
        return deployed(deployment)
    except SystemExit:
        return None


def _functions_present(app: DeployedApp, lambda_client: Any) -> int:
    """How many functions of the last deploy still exist (a restarted local cloud, or another
    checkout's deploy into the same one, leaves none or other ones)."""
    present = 0
    for arn in app.function_arns.values():
        try:
            lambda_client.get_function(FunctionName=arn)
        except ClientError:
            continue
        present += 1
    return present


def _api_present(app: DeployedApp, apigateway: Any) -> bool:
    try:
        apigateway.get_rest_api(restApiId=app.rest_api_id)
    except ClientError:
        return False
    return True
