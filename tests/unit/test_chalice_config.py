"""Unit tests of Chalice's config: the tracked one is what a person writes, the deploy renders
the rest under build/ (deploy/chalice_app.py); read as Chalice reads it. No cloud needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.cli.factory import CLIFactory
from chalice.config import Config

from chalicelib import settings
from chalicelib.functions import FUNCTIONS
from deploy import chalice_app, stages, template
from deploy.stages import CHALICE_CONFIG, PROJECT, STAGES_FILE, Deployment, DeployPath, load_stage

STAGES = sorted(json.loads(STAGES_FILE.read_text()))
# What a deployment produces, or what chalicelib/functions.py declares for each function.
RENDERED_KEYS = {
    "environment_variables",
    "iam_role_arn",
    "lambda_functions",
    "lambda_timeout",
    "lambda_memory_size",
    "reserved_concurrency",
}


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for inner in value.values() for key in keys_in(inner)}
    if isinstance(value, list):
        return {key for inner in value for key in keys_in(inner)}
    return set()


def stack_outputs(deployment: Deployment) -> dict[str, str]:
    """A value for every output of the deployment's stack, as CloudFormation would give them."""
    outputs = template.render(deployment)["Outputs"]
    return {key: f"arn:aws:test:us-east-1:000000000000:{key}" for key in outputs}


def test_the_tracked_config_holds_only_what_a_person_writes() -> None:
    text = CHALICE_CONFIG.read_text()
    # No deploy output: no ARN, no environment, no role, and no function's settings
    assert "arn:" not in text
    assert keys_in(json.loads(text)) & RENDERED_KEYS == set()


def test_the_tracked_config_check_catches_a_stage_environment() -> None:
    written = {"stages": {"local": {"environment_variables": {"ORDERS_TABLE_NAME": "orders"}}}}
    assert keys_in(written) & RENDERED_KEYS == {"environment_variables"}


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_reads_each_functions_role_environment_and_settings_from_the_rendering(
    stage: str,
) -> None:
    # GIVEN a stage's chalice deploy path and its stack's outputs
    deployment = Deployment(load_stage(stage), DeployPath.CHALICE)
    outputs = stack_outputs(deployment)
    # WHEN its config is rendered
    rendered = chalice_app.chalice_config(deployment, outputs)
    environment = {
        variable: outputs[template.output_key(variable)]
        for variable in template.function_environment(deployment)
    }
    # THEN Chalice finds, for every declared function, what the stack and the declaration say
    assert {f.name for f in FUNCTIONS} == set(rendered["stages"][stage]["lambda_functions"])
    for function in FUNCTIONS:
        config = Config(stage, function_name=function.name, config_from_disk=rendered)
        assert config.iam_role_arn == outputs[template.role_id(function.name) + "Arn"]
        assert config.environment_variables == environment
        assert config.lambda_timeout == function.timeout.seconds(deployment.stage.is_local)
        assert config.lambda_memory_size == function.memory_mb
        local = deployment.stage.is_local
        reserved = None if function.reserved is None else function.reserved.executions(local)
        assert config.reserved_concurrency == reserved
        # AND what the person wrote
        assert (config.app_name, config.api_gateway_stage) == ("orders", "api")
        assert config.manage_iam_role is False
        assert config.xray_enabled is True


def test_for_chalice_package_the_rendering_has_no_stack_values() -> None:
    # The SAM path's roles and environment are the merge template's (CloudFormation intrinsics).
    deployment = Deployment(load_stage("local"), DeployPath.SAM)
    rendered = chalice_app.chalice_config(deployment, None)
    for function in FUNCTIONS:
        config = Config("local", function_name=function.name, config_from_disk=rendered)
        assert config.lambda_timeout == function.timeout.local
        assert config.environment_variables == {}
        assert config.iam_role_arn is None


def test_the_rendered_project_is_the_apps_sources_with_the_rendered_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stages, "BUILD", tmp_path)
    deployment = Deployment(load_stage("local"), DeployPath.CHALICE)
    outputs = stack_outputs(deployment)
    # GIVEN a project rendered before, with a source no longer packaged
    chalice_app.render_project(deployment, outputs)
    (deployment.chalice_project / "retired.py").symlink_to(PROJECT / "app.py")
    # WHEN the deployment's Chalice project is rendered again
    project = chalice_app.render_project(deployment, outputs)
    # THEN it is under build/, its sources are this checkout's, and only them
    assert project == tmp_path / "chalice" / deployment.prefix
    assert {path.name for path in project.iterdir()} == {".chalice", *chalice_app.APP_SOURCES}
    for source in chalice_app.APP_SOURCES:
        assert (project / source).resolve() == (PROJECT / source).resolve()
    # AND Chalice's own command line reads the rendered config there
    config = CLIFactory(str(project)).create_config_obj(chalice_stage_name="local")
    table = outputs[template.output_key(settings.ORDERS_TABLE)]
    assert config.environment_variables[settings.ORDERS_TABLE] == table


def test_a_torn_down_stage_counts_as_not_deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Chalice's record of a stage after `chalice delete`: kept, with no resources
    monkeypatch.setattr(stages, "BUILD", tmp_path)
    deployment = Deployment(load_stage("local-b"), DeployPath.CHALICE)
    record = deployment.chalice_project / ".chalice" / "deployed" / "local-b.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"resources": [], "schema_version": "2.0", "backend": "api"}))
    # THEN the deploy reads it as nothing deployed (so `up` deploys again), not a crash
    with pytest.raises(SystemExit, match="nothing deployed for stage local-b"):
        chalice_app.deployed(deployment)
