"""Stages (``deploy/stages.json``) and the two deployments of a stage (the deploy paths).

The stage is the one setting: every resource name derives from it, through
``Deployment.prefix``, so stages (and the two paths of one stage) live side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from chalicelib import tracing
from chalicelib.application import APP_NAME
from chalicelib.orders.admission import Admission

PROJECT = Path(__file__).resolve().parents[1]
STAGES_FILE = Path(__file__).with_name("stages.json")
# What a person writes of Chalice's config; the deploy renders the rest (deploy/chalice_app.py).
CHALICE_CONFIG = PROJECT / ".chalice" / "config.json"
ASL = PROJECT / "statemachines" / "order_flow.asl.json"
BUILD = PROJECT / "build"
# Fewer receives make a passing hiccup (a throttle, a dependency's blip) a dead letter.
MIN_RECEIVES_BEFORE_DEAD_LETTER = 3


class DeployPath(StrEnum):
    CHALICE = "chalice"  # a CloudFormation stack of the resources, then `chalice deploy`
    SAM = "sam"  # `chalice package --merge-template`: one SAM stack with the functions


@dataclass(frozen=True)
class StageAuth:
    """Who issues the API's bearer tokens (an OIDC issuer), as the stage declares it."""

    issuer: str
    audience: str
    # The claim naming the caller's role: "role", or "cognito:groups" for a Cognito user pool.
    role_claim: str
    # The issuer's published keys; None on local stages, whose development issuer's keys
    # the deploy puts in an SSM parameter (localdev/dev_issuer.py).
    jwks_url: str | None

    @classmethod
    def parse(cls, stage_name: str, declared: dict[str, Any]) -> StageAuth:
        try:
            return cls(
                issuer=declared["issuer"],
                audience=declared["audience"],
                role_claim=declared["role_claim"],
                jwks_url=declared.get("jwks_url"),
            )
        except KeyError as missing:
            raise SystemExit(
                f"stage {stage_name}: auth.{missing.args[0]} is missing in {STAGES_FILE.name}"
            ) from None


@dataclass(frozen=True)
class ApiThrottling:
    """API Gateway's throttling of every route of the stage: requests over it are answered
    ``429`` at the door, before any function runs (so a flood cannot take the functions'
    concurrency). The local cloud keeps the setting but does not enforce it."""

    rate_per_second: int  # steady requests per second
    burst: int  # requests at once above the steady rate

    @classmethod
    def parse(cls, stage_name: str, declared: dict[str, Any]) -> ApiThrottling:
        if "api_throttling" not in declared:
            raise SystemExit(
                f"stage {stage_name}: api_throttling (rate_per_second, burst) is missing in "
                f"{STAGES_FILE.name}"
            )
        throttling = declared["api_throttling"]
        try:
            parsed = cls(int(throttling["rate_per_second"]), int(throttling["burst"]))
        except KeyError as missing:
            raise SystemExit(
                f"stage {stage_name}: api_throttling.{missing.args[0]} is missing in "
                f"{STAGES_FILE.name}"
            ) from None
        if parsed.rate_per_second < 1 or parsed.burst < 1:
            raise SystemExit(f"stage {stage_name}: api_throttling must be positive: {throttling}")
        return parsed


@dataclass(frozen=True)
class StageTracing:
    """Which tracer the stage's functions run (chalicelib/tracing.py), and where OpenTelemetry's
    spans go: X-Ray's SDK unless the stage says ``"tracer": "opentelemetry"``, which needs
    ``otlp_traces_endpoint`` (docs/tracing.md: which endpoint in AWS)."""

    tracer: str = tracing.XRAY
    otlp_traces_endpoint: str | None = None

    @classmethod
    def parse(cls, stage_name: str, declared: dict[str, Any]) -> StageTracing:
        tracer = declared.get("tracer", tracing.XRAY)
        endpoint = declared.get("otlp_traces_endpoint")
        if tracer not in tracing.TRACERS:
            raise SystemExit(
                f"stage {stage_name}: tracer must be one of {', '.join(tracing.TRACERS)} in "
                f"{STAGES_FILE.name}, not {tracer!r}"
            )
        if tracer == tracing.OPENTELEMETRY and not endpoint:
            raise SystemExit(
                f"stage {stage_name}: tracer opentelemetry needs otlp_traces_endpoint in "
                f"{STAGES_FILE.name}: where the functions send their spans (docs/tracing.md)"
            )
        if tracer == tracing.XRAY and endpoint:
            raise SystemExit(
                f"stage {stage_name}: otlp_traces_endpoint is for tracer opentelemetry; the "
                f"stage's tracer is xray in {STAGES_FILE.name}"
            )
        return cls(tracer, endpoint)


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "local" (the local cloud) or "aws"
    restaurant_deadline_seconds: int
    # How long the restaurant has to confirm delivery once the customer was told of acceptance.
    delivery_deadline_seconds: int
    # Receives before a message is dead-lettered (at least MIN_RECEIVES_BEFORE_DEAD_LETTER).
    max_receive_count: int
    auth: StageAuth
    api_throttling: ApiThrottling
    # How many orders may be on their way to their restaurants before POST /orders answers 503
    # with Retry-After (chalicelib/orders/admission.py; docs/scaling.md sizes it).
    admission: Admission
    # Local stages only: the SQS event source mappings' batching window. In the local
    # cloud it makes the poller long-poll (a message is handed over at once); in AWS a
    # window delays batches to fill them, so AWS stages leave it out.
    sqs_batching_window_seconds: int | None
    # Point-in-time recovery and deletion protection of the tables. Local stages turn it off
    # ("protect_data": false) so that a teardown removes their tables; a stage that does not
    # say is protected.
    protect_data: bool = True
    tracing: StageTracing = StageTracing()

    @property
    def is_local(self) -> bool:
        return self.target == "local"


@dataclass(frozen=True)
class Deployment:
    """One stage deployed one way; ``prefix`` names every resource it owns."""

    stage: Stage
    path: DeployPath

    @property
    def prefix(self) -> str:
        # Chalice names its functions <app>-<stage>-<function>; the resources follow suit.
        middle = "-sam" if self.path is DeployPath.SAM else ""
        return f"{APP_NAME}{middle}-{self.stage.name}"

    @property
    def stack_name(self) -> str:
        return self.prefix

    def function_name(self, chalice_name: str) -> str:
        return self.prefix if chalice_name == "api_handler" else f"{self.prefix}-{chalice_name}"

    @property
    def outputs_file(self) -> Path:
        return BUILD / f"outputs-{self.prefix}.json"

    @property
    def chalice_project(self) -> Path:
        """Where Chalice runs for this deployment: the app's sources linked, its rendered
        ``.chalice/config.json``, and what Chalice records of its deploys."""
        return BUILD / "chalice" / self.prefix


def load_stage(name: str) -> Stage:
    stages = json.loads(STAGES_FILE.read_text())
    if name not in stages:
        raise SystemExit(f"unknown stage {name!r}; stages in {STAGES_FILE.name}: {sorted(stages)}")
    declared: dict[str, Any] = stages[name]
    return Stage(
        name=name,
        target=declared["target"],
        restaurant_deadline_seconds=int(declared["restaurant_deadline_seconds"]),
        delivery_deadline_seconds=int(declared["delivery_deadline_seconds"]),
        max_receive_count=int(declared["max_receive_count"]),
        auth=StageAuth.parse(name, declared["auth"]),
        api_throttling=ApiThrottling.parse(name, declared),
        admission=_admission(name, declared),
        sqs_batching_window_seconds=declared.get("local_tuning", {}).get(
            "sqs_maximum_batching_window_seconds"
        ),
        protect_data=bool(declared.get("protect_data", True)),
        tracing=StageTracing.parse(name, declared),
    )


def development_issuer_trusted(stage: Stage) -> bool:
    """Whether the stage's API trusts the local development issuer's key (local stages, which
    name no ``jwks_url``). An AWS stage naming none is refused with the reason: it would trust
    a key whose private half lies in ``build/dev-issuer/`` of whichever machine deployed it."""
    if stage.auth.jwks_url is not None:
        return False
    if not stage.is_local:
        raise SystemExit(
            f"stage {stage.name} is an AWS stage without auth.jwks_url in {STAGES_FILE.name}: "
            "set it to your token issuer's published keys (README, Security); an AWS stage "
            "never trusts the local development issuer's key"
        )
    return True


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


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """An exclusive lock on ``build/<name>.lock``, shared by every process of this checkout
    (flock: released if the process dies). Deploys, package builds and the vendor build of
    one checkout may run in several processes at once (make run's two paths, make test)."""
    BUILD.mkdir(exist_ok=True)
    with (BUILD / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _admission(stage_name: str, declared: dict[str, Any]) -> Admission:
    admission = declared.get("admission", {})
    try:
        parsed = Admission(
            int(admission["orders_in_flight"]), int(admission["retry_after_seconds"])
        )
    except KeyError as missing:
        raise SystemExit(
            f"stage {stage_name}: admission.{missing.args[0]} is missing in {STAGES_FILE.name}"
        ) from None
    if parsed.orders_in_flight < 1 or parsed.retry_after_seconds < 1:
        raise SystemExit(f"stage {stage_name}: admission must be positive: {admission}")
    return parsed
