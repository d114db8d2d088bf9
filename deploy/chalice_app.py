"""``chalice deploy`` / ``chalice delete`` for a stage, and what they deployed."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import CHALICE_CONFIG, PROJECT, Stage

CHALICE = Path(sys.executable).with_name("chalice")


@dataclass(frozen=True)
class DeployedApp:
    function_arns: dict[str, str]  # Chalice function name -> ARN
    rest_api_id: str
    rest_api_url: str


def set_stage_environment(stage: Stage, variables: dict[str, str]) -> None:
    """Write the resources' names and ARNs into the stage's function environment."""
    config = json.loads(CHALICE_CONFIG.read_text())
    current = config["stages"][stage.name]["environment_variables"]
    if all(current.get(key) == value for key, value in variables.items()):
        return
    current.update(variables)
    CHALICE_CONFIG.write_text(json.dumps(config, indent=2) + "\n")


def chalice(command: str, stage: Stage, env: dict[str, str]) -> None:
    subprocess.run(
        [str(CHALICE), command, "--stage", stage.name],
        cwd=PROJECT,
        env=env | {"ORDERS_RESOURCE_PREFIX": stage.resource_prefix},
        check=True,
    )


def deployed(stage: Stage) -> DeployedApp:
    record = PROJECT / ".chalice" / "deployed" / f"{stage.name}.json"
    if not record.exists():
        raise SystemExit(f"nothing deployed for stage {stage.name} ({record} is missing)")
    resources = json.loads(record.read_text())["resources"]
    functions = {
        resource["name"]: resource["lambda_arn"]
        for resource in resources
        if resource["resource_type"] == "lambda_function"
    }
    api = next(r for r in resources if r["resource_type"] == "rest_api")
    return DeployedApp(functions, api["rest_api_id"], api["rest_api_url"])
