"""checkov over the rendered infrastructure, both deploy paths, an AWS and a local stage.

Integration, not unit: it builds the SAM templates with ``chalice package`` and runs checkov
(one run over one folder holding all four templates, to keep it to about 15 s); no cloud needed.
Besides checkov's own checks it runs the project's (``deploy/checkov_checks``): queue and
topic policies deny requests without TLS.

Local renders are scanned as well as ``dev``: they deploy the same declaration, and a finding
in them (an unencrypted queue, say) is as wrong there. Their one intended difference, point-in-
time recovery off so that a local teardown can delete the tables, is a skip that holds for
local stages only, with its reason, in ``deploy/checkov_skips.json``; tests/integration/
test_sam_template.py asserts that local stages have PITR and deletion protection off and
``dev`` on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy import package, template
from deploy.stages import PROJECT, Deployment, DeployPath, load_stage
from tests.shared_run import once_per_run

CHECKOV = Path(sys.executable).with_name("checkov")
SKIPS_FILE = PROJECT / "deploy" / "checkov_skips.json"
CUSTOM_CHECKS = PROJECT / "deploy" / "checkov_checks"
STAGES = ["dev", "local"]


@dataclass(frozen=True)
class Finding:
    check: str
    stage: str
    template: str  # <deploy path>-<stage>.json
    resource: str


def _skips() -> list[dict[str, Any]]:
    return list(json.loads(SKIPS_FILE.read_text())["skips"])


def _skipped(finding: Finding, skip: dict[str, Any]) -> bool:
    if skip["check"] != finding.check:
        return False
    return not skip.get("local_stages_only") or load_stage(finding.stage).is_local


def _rendered(folder: Path) -> Iterator[Path]:
    env = dict(os.environ) | {"AWS_DEFAULT_REGION": "us-east-1"}
    for stage in STAGES:
        chalice_path = Deployment(load_stage(stage), DeployPath.CHALICE)
        stack = folder / f"{DeployPath.CHALICE}-{stage}.json"
        stack.write_text(json.dumps(template.render(chalice_path), indent=1))
        yield stack
        built = package.build(Deployment(load_stage(stage), DeployPath.SAM), env)
        sam = folder / f"{DeployPath.SAM}-{stage}.json"
        sam.write_text((built / package.SAM_TEMPLATE).read_text())
        yield sam


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    # A minute of CPU: the first process of the run that asks scans, the others read its findings.
    scanned = once_per_run(
        "checkov-findings",
        lambda: {"findings": [asdict(f) for f in _scan(tmp_path_factory.mktemp("rendered"))]},
    )
    return [Finding(**finding) for finding in scanned["findings"]]


def _scan(folder: Path) -> list[Finding]:
    assert len(list(_rendered(folder))) == 2 * len(STAGES)
    scan = subprocess.run(
        [str(CHECKOV), "--directory", str(folder), "--framework", "cloudformation"]
        + ["--external-checks-dir", str(CUSTOM_CHECKS), "--output", "json", "--quiet"]
        # Offline: no download of guidelines (it would only log a connection error).
        + ["--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # checkov exits 1 when a check fails; anything else (or no JSON) is checkov failing.
    assert scan.returncode in (0, 1), scan.stderr
    report = json.loads(scan.stdout)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["resource_count"] > 0, report["summary"]
    result = []
    for failed in report["results"]["failed_checks"]:
        name = Path(failed["file_path"]).name
        stage = name.split("-", 1)[1].removesuffix(".json")
        result.append(Finding(failed["check_id"], stage, name, failed["resource"]))
    return result


def test_every_skip_has_a_reason() -> None:
    skips = _skips()
    assert skips
    for skip in skips:
        assert skip["check"].startswith("CKV"), skip
        assert isinstance(skip.get("reason"), str) and skip["reason"].strip(), skip
    assert len({skip["check"] for skip in skips}) == len(skips), "one entry per check"


def test_checkov_finds_nothing_outside_the_skip_list(findings: list[Finding]) -> None:
    unexpected = [f for f in findings if not any(_skipped(f, skip) for skip in _skips())]
    assert unexpected == [], "\n".join(map(str, unexpected))


def test_every_skip_is_still_needed(findings: list[Finding]) -> None:
    # A skip whose check no longer fails anywhere would hide the next real finding.
    unused = [s["check"] for s in _skips() if not any(_skipped(f, s) for f in findings)]
    assert unused == []


def test_the_local_only_skips_are_not_needed_on_aws_stages(findings: list[Finding]) -> None:
    local_only = {skip["check"] for skip in _skips() if skip.get("local_stages_only")}
    assert not [f for f in findings if f.check in local_only and f.stage == "dev"]


def test_the_tls_check_fails_a_policy_that_allows_plain_http() -> None:
    # Imported here: checkov's check classes take seconds to import, in every pytest process
    # that collects this module (the scan itself runs checkov in a process of its own).
    from checkov.common.models.enums import CheckResult

    from deploy.checkov_checks import deny_without_tls

    # GIVEN a rendered queue policy, and the same policy without its TLS deny
    resources = template.render(Deployment(load_stage("dev"), DeployPath.CHALICE))["Resources"]
    policy = resources["PromotionsQueuePolicy"]
    document = policy["Properties"]["PolicyDocument"]
    allow_only = document | {"Statement": document["Statement"][:1]}
    without = {"Properties": {"PolicyDocument": allow_only}}
    # THEN the project's check passes the first and fails the second
    assert deny_without_tls.check.scan_resource_conf(policy) is CheckResult.PASSED
    assert deny_without_tls.check.scan_resource_conf(without) is CheckResult.FAILED
