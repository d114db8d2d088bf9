"""Chalice runs for a deployment in a project rendered under ``build/chalice/<prefix>/``.

The tracked ``.chalice/config.json`` holds only what a person writes. The rendered project
links the app's sources and holds its own ``.chalice/config.json``: the written one plus, for
the stage, each declared function's timeout, memory and reserved concurrency
(``chalicelib/functions.py``) and, on the ``chalice deploy`` path, what the infrastructure
stack gave (the functions' environment and roles). What Chalice records of a deploy
(``.chalice/deployed/``) stays there too.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.functions import FUNCTIONS
from deploy import function_package, template
from deploy.stages import CHALICE_CONFIG, PROJECT, Deployment

CHALICE = Path(sys.executable).with_name("chalice")
# Lambda waiters that poll five times a second (botocore's FunctionUpdated waits 5 s a poll,
# which made each function update of `chalice deploy` cost 5-10 s).
BOTOCORE_DATA = Path(__file__).with_name("botocore_data")
# What Chalice packages: the app, and in vendor/ the libraries the functions import and nothing
# else (deploy/function_package.py). Every function create, upload and unzip pays for each
# megabyte of it (locally about 1.5 s a function for boto3's 18 MB, which the runtime has).
APP_SOURCES = ["app.py", "chalicelib", "vendor"]
# Chalice imports the app to package it: no bytecode from that into chalicelib/ (and the zip).
# The API Gateway stage Chalice deploys the routes to (the written config's api_gateway_stage).
API_STAGE = json.loads(CHALICE_CONFIG.read_text())["api_gateway_stage"]
CHALICE_ENVIRONMENT = {"AWS_DATA_PATH": str(BOTOCORE_DATA), "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class DeployedApp:
    function_arns: dict[str, str]  # Chalice function name -> ARN
    rest_api_id: str
    rest_api_url: str


def render_project(deployment: Deployment, stack_outputs: dict[str, str] | None) -> Path:
    """The deployment's Chalice project: the app's sources linked, its config rendered (with
    the stack's outputs on the ``chalice deploy`` path; None for ``chalice package``)."""
    project = deployment.chalice_project
    (project / ".chalice").mkdir(parents=True, exist_ok=True)
    for link in project.iterdir():
        if link.is_symlink() and link.name not in APP_SOURCES:
            link.unlink()  # a source no longer packaged
    for source in APP_SOURCES:
        link, target = project / source, PROJECT / source
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    text = json.dumps(chalice_config(deployment, stack_outputs), indent=2) + "\n"
    config = project / ".chalice" / "config.json"
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return project


def chalice_config(deployment: Deployment, stack_outputs: dict[str, str] | None) -> dict[str, Any]:
    """The written ``.chalice/config.json`` with the stage's functions as Chalice must make them."""
    written: dict[str, Any] = json.loads(CHALICE_CONFIG.read_text())
    local = deployment.stage.is_local
    functions: dict[str, dict[str, Any]] = {
        function.name: {
            "lambda_timeout": function.timeout.seconds(local),
            "lambda_memory_size": function.memory_mb,
        }
        # Chalice sets it on `chalice deploy` and writes ReservedConcurrentExecutions on
        # `chalice package`: both paths reserve the same.
        | (
            {}
            if function.reserved is None
            else {"reserved_concurrency": function.reserved.executions(local)}
        )
        for function in FUNCTIONS
    }
    stage: dict[str, Any] = {"lambda_functions": functions}
    if stack_outputs is not None:
        for name, settings in functions.items():
            settings["iam_role_arn"] = stack_outputs[template.role_id(name) + "Arn"]
        stage["environment_variables"] = {
            variable: stack_outputs[template.output_key(variable)]
            for variable in template.function_environment(deployment)
        }
    name = deployment.stage.name
    return written | {"stages": {name: written.get("stages", {}).get(name, {}) | stage}}


def chalice(command: str, deployment: Deployment, env: dict[str, str], *arguments: str) -> None:
    """``chalice <command> --stage <stage> <arguments>`` in the deployment's rendered project;
    its output only if it fails."""
    # Chalice zips every file under chalicelib/, stale bytecode caches too: prepare removes them.
    function_package.prepare()
    completed = subprocess.run(
        [str(CHALICE), "--project-dir", str(deployment.chalice_project), command]
        + ["--stage", deployment.stage.name, *arguments],
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
    _adopt_earlier_record(deployment)
    marker = _deployed(deployment, "fingerprint")
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
        _deployed(deployment, "json").unlink(missing_ok=True)
    chalice("deploy", deployment, env)
    marker.write_text(fingerprint)
    return True


def delete(deployment: Deployment, env: dict[str, str]) -> None:
    _adopt_earlier_record(deployment)
    if _deployed(deployment, "json").exists():
        chalice("delete", deployment, env)
    _deployed(deployment, "fingerprint").unlink(missing_ok=True)


def _deployed(deployment: Deployment, suffix: str) -> Path:
    """Chalice's record of the stage's deploy (``json``), or the fingerprint of what it was."""
    return (
        deployment.chalice_project / ".chalice" / "deployed" / f"{deployment.stage.name}.{suffix}"
    )


def _adopt_earlier_record(deployment: Deployment) -> None:
    """A checkout that ran Chalice in the project folder itself keeps its record of the stage
    in ``.chalice/deployed/``: moved into the rendered project, Chalice updates what it made
    (without it, Chalice would make the event source mappings again, and fail on them)."""
    for suffix in ("json", "fingerprint"):
        earlier = PROJECT / ".chalice" / "deployed" / f"{deployment.stage.name}.{suffix}"
        if earlier.exists() and not _deployed(deployment, suffix).exists():
            _deployed(deployment, suffix).parent.mkdir(parents=True, exist_ok=True)
            earlier.rename(_deployed(deployment, suffix))


def deployed(deployment: Deployment) -> DeployedApp:
    record = _deployed(deployment, "json")
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
    api = next((r for r in resources if r["resource_type"] == "rest_api"), None)
    if api is None:  # torn down: Chalice keeps the record, empty
        raise SystemExit(f"nothing deployed for stage {deployment.stage.name} (torn down)")
    return DeployedApp(functions, api["rest_api_id"], api["rest_api_url"])


def _fingerprint(deployment: Deployment) -> str:
    """Of the rendered config and the app's sources."""
    digest = hashlib.sha256()
    digest.update((deployment.chalice_project / ".chalice" / "config.json").read_bytes())
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
