"""Unit tests: what Chalice packages into the functions is a closed list (see requirements.txt)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
# What the AWS Lambda Python runtimes provide (and the local cloud's runtime venvs install).
LAMBDA_RUNTIME = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "urllib3",
    "six",
}


def packaged() -> dict[str, Requirement]:
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(r.name): r for r in requirements}


def dependencies_left_out(requirements: dict[str, Requirement]) -> set[str]:
    missing = set()
    for name in requirements:
        for text in importlib.metadata.requires(name) or []:
            needed = Requirement(text)
            if needed.marker is not None and not needed.marker.evaluate({"extra": ""}):
                continue
            dependency = canonicalize_name(needed.name)
            if dependency not in requirements and dependency not in LAMBDA_RUNTIME:
                missing.add(f"{name} needs {dependency}")
    return missing


def test_every_dependency_of_a_packaged_library_is_packaged_or_in_the_lambda_runtime() -> None:
    assert dependencies_left_out(packaged()) == set()


def test_the_check_notices_a_dependency_left_out() -> None:
    without_wrapt = {n: r for n, r in packaged().items() if n != "wrapt"}
    assert dependencies_left_out(without_wrapt) == {"aws-xray-sdk needs wrapt"}


def test_every_packaged_library_is_pinned_to_the_version_the_tests_run() -> None:
    for name, requirement in packaged().items():
        assert str(requirement.specifier) == f"=={importlib.metadata.version(name)}", name
