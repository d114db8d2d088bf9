"""Unit tests: an AWS stage trusts only its token issuer's published keys, never the local
development issuer's key (which signs whatever tools.token asks on any machine that deployed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy import __main__ as deploy_command
from deploy import stages, template
from deploy.stages import Deployment, DeployPath, load_stage

NAMES_THE_SETTING = r"AWS stage without auth\.jwks_url"


@pytest.fixture
def stage_without_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """deploy/stages.json plus "prod": an AWS stage whose auth names no jwks_url."""
    declared = json.loads(stages.STAGES_FILE.read_text())
    prod = json.loads(json.dumps(declared["dev"]))
    del prod["auth"]["jwks_url"]
    prod["auth"] |= {"issuer": "https://issuer.example", "audience": "orders"}
    stages_file = tmp_path / "stages.json"
    stages_file.write_text(json.dumps(declared | {"prod": prod}))
    monkeypatch.setattr(stages, "STAGES_FILE", stages_file)
    return "prod"


@pytest.mark.parametrize(
    "command",
    [["render"], ["render", "--path", "sam"], ["up"], ["sam-up"]],
    ids=["render", "render-sam", "up", "sam-up"],
)
def test_an_aws_stage_without_a_jwks_url_is_refused_before_anything_is_made(
    stage_without_keys: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match=NAMES_THE_SETTING):
        deploy_command.main([*command, "--stage", stage_without_keys])
    assert capsys.readouterr().out == ""  # no template printed


@pytest.mark.parametrize("path", list(DeployPath))
def test_no_template_or_package_of_such_a_stage_holds_the_development_key(
    stage_without_keys: str, path: DeployPath
) -> None:
    deployment = Deployment(load_stage(stage_without_keys), path)
    with pytest.raises(SystemExit, match=NAMES_THE_SETTING):
        template.render(deployment)
    with pytest.raises(SystemExit, match=NAMES_THE_SETTING):
        template.function_environment(deployment)  # what package.build hands the functions


def test_local_stages_trust_the_development_issuer_and_aws_stages_their_issuers_url() -> None:
    local = template.render(Deployment(load_stage("local"), DeployPath.CHALICE))
    dev = template.render(Deployment(load_stage("dev"), DeployPath.CHALICE))
    assert "AuthKeysParameter" in local["Resources"]
    assert "AuthKeysParameter" not in dev["Resources"]
    assert dev["Outputs"]["OrdersAuthJwksUrl"]["Value"] == load_stage("dev").auth.jwks_url
