"""Unit tests: the stage's tracer (deploy/stages.json ``tracer``) reaches every function's
environment on both deploy paths; X-Ray unless the stage says otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import settings
from chalicelib.functions import FUNCTIONS
from deploy import chalice_app, stages, template
from deploy.stages import Deployment, DeployPath, load_stage

ENDPOINT = "http://localhost:4318/v1/traces"  # the ADOT collector layer's OTLP/HTTP receiver


def with_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **tracing: Any) -> str:
    """deploy/stages.json plus "traced": the dev stage with these tracing settings."""
    declared = json.loads(stages.STAGES_FILE.read_text())
    stages_file = tmp_path / "stages.json"
    stages_file.write_text(json.dumps(declared | {"traced": declared["dev"] | tracing}))
    monkeypatch.setattr(stages, "STAGES_FILE", stages_file)
    return "traced"


def environments(deployment: Deployment) -> list[dict[str, Any]]:
    """Each function's environment as the deploy path hands it over."""
    if deployment.path is DeployPath.SAM:
        overrides = template.function_overrides(deployment)
        return [
            overrides[template.logical_id(f.name)]["Properties"]["Environment"]["Variables"]
            for f in FUNCTIONS
        ]
    # The stack's outputs as CloudFormation gives them: each the value the template declares.
    outputs = {key: spec["Value"] for key, spec in template.render(deployment)["Outputs"].items()}
    rendered = chalice_app.chalice_config(deployment, outputs)["stages"][deployment.stage.name]
    # Chalice gives the stage's environment to every function (none has one of its own).
    assert not any("environment_variables" in f for f in rendered["lambda_functions"].values())
    return [rendered["environment_variables"]]


@pytest.mark.parametrize("path", list(DeployPath))
@pytest.mark.parametrize("stage", ["local", "dev"])
def test_a_stage_that_names_no_tracer_runs_x_ray(stage: str, path: DeployPath) -> None:
    for environment in environments(Deployment(load_stage(stage), path)):
        assert environment[settings.TRACER] == "xray"
        assert settings.OTLP_TRACES_ENDPOINT not in environment


@pytest.mark.parametrize("path", list(DeployPath))
def test_a_stage_on_opentelemetry_hands_every_function_the_tracer_and_its_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: DeployPath
) -> None:
    name = with_stage(tmp_path, monkeypatch, tracer="opentelemetry", otlp_traces_endpoint=ENDPOINT)
    deployment = Deployment(load_stage(name), path)
    for environment in environments(deployment):
        assert environment[settings.TRACER] == "opentelemetry"
        assert environment[settings.OTLP_TRACES_ENDPOINT] == ENDPOINT
    # AND on the chalice path the stack hands them over as outputs
    if path is DeployPath.CHALICE:
        outputs = template.render(deployment)["Outputs"]
        assert outputs[template.output_key(settings.TRACER)] == {"Value": "opentelemetry"}


@pytest.mark.parametrize(
    ("tracing", "refusal"),
    [
        ({"tracer": "zipkin"}, "tracer must be one of xray, opentelemetry"),
        ({"tracer": "opentelemetry"}, "tracer opentelemetry needs otlp_traces_endpoint"),
        ({"otlp_traces_endpoint": ENDPOINT}, "otlp_traces_endpoint is for tracer opentelemetry"),
    ],
)
def test_a_tracer_setting_that_cannot_work_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracing: dict[str, str], refusal: str
) -> None:
    name = with_stage(tmp_path, monkeypatch, **tracing)
    with pytest.raises(SystemExit, match=refusal):
        load_stage(name)
