"""What a deploy needs to know about a stage, from .chalice/config.json and deploy/stages.json."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
CHALICE_CONFIG = PROJECT / ".chalice" / "config.json"
STAGES = Path(__file__).with_name("stages.json")
ASL = PROJECT / "statemachines" / "order_flow.asl.json"


@dataclass(frozen=True)
class Stage:
    name: str
    resource_prefix: str
    max_receive_count: int
    queue_visibility_timeout_seconds: int
    restaurant_deadline_seconds: int
    lambda_timeout_seconds: int

    @property
    def orders_table(self) -> str:
        return self.resource_prefix

    @property
    def vouchers_table(self) -> str:
        return f"{self.resource_prefix}-vouchers"

    @property
    def events_topic(self) -> str:
        return f"{self.resource_prefix}-events"

    @property
    def notifications_topic(self) -> str:
        return f"{self.resource_prefix}-notifications"

    @property
    def state_machine(self) -> str:
        return f"{self.resource_prefix}-flow"

    @property
    def state_machine_role(self) -> str:
        return f"{self.resource_prefix}-flow-role"

    def with_prefix(self, prefix: str) -> Stage:
        return Stage(**(self.__dict__ | {"resource_prefix": prefix}))


def load_stage(name: str) -> Stage:
    chalice = json.loads(CHALICE_CONFIG.read_text())
    stages = json.loads(STAGES.read_text())
    if name not in chalice["stages"] or name not in stages:
        known = sorted(set(chalice["stages"]) & set(stages))
        raise SystemExit(f"unknown stage {name!r}; known stages: {', '.join(known)}")
    chalice_stage = chalice["stages"][name]
    variables = chalice_stage["environment_variables"]
    return Stage(
        name=name,
        resource_prefix=stages[name]["resource_prefix"],
        max_receive_count=int(stages[name]["max_receive_count"]),
        queue_visibility_timeout_seconds=int(stages[name]["queue_visibility_timeout_seconds"]),
        restaurant_deadline_seconds=int(variables["RESTAURANT_DEADLINE_SECONDS"]),
        lambda_timeout_seconds=int(chalice_stage.get("lambda_timeout", chalice["lambda_timeout"])),
    )


def aws_environment() -> dict[str, str]:
    """The environment for AWS calls and chalice: the local cloud's if one is configured."""
    env = dict(os.environ)
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("LOCALSTACK_ENDPOINT")
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
