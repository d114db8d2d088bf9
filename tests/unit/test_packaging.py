"""Unit tests: the functions' package holds what they import, a closed list, and nothing else.

requirements-functions.txt lists the libraries; deploy/function_package.py installs them for the
Lambda runtime without the parts no function imports. What the functions import is measured
here: a fresh interpreter with a Lambda function's environment loads the app and every module of
chalicelib, turns tracing on, and verifies an RS256 and an ES256 token.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import function_package

PROJECT = Path(__file__).resolve().parents[2]
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
# Chalice adds its own runtime (chalice/app.py) to every package.
CHALICE = "chalice"
ISSUER, AUDIENCE = "https://issuer.example", "orders-api"
# Loads what a function loads, then prints the modules it loaded (not the interpreter's start).
FUNCTION = """
import importlib, json, pkgutil, sys
started = set(sys.modules)
import app, chalicelib
for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(module.name)
from chalicelib import tracing
assert tracing.configure(), "tracing is off"
from chalicelib.adapters.jwt_tokens import JwksUrlKeys, JwtVerifier
from chalicelib.ports import SigningKeys
import jwt
given = json.load(sys.stdin)
class Keys(SigningKeys):
    def key_for(self, token):
        kid = jwt.get_unverified_header(token)["kid"]
        return next(k.key for k in jwt.PyJWKSet.from_dict(given["jwks"]).keys if k.key_id == kid)
verifier = JwtVerifier(Keys(), given["issuer"], given["audience"], "role")
for token in given["tokens"]:
    verifier.verify(token)
JwksUrlKeys("https://issuer.example/.well-known/jwks.json")
tracing.logger.info("loaded")
modules = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
print(json.dumps({name: file for name, file in modules.items() if name not in started}))
"""


def listed() -> dict[str, Requirement]:
    lines = [line.strip() for line in function_package.REQUIREMENTS.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    requirements.append(Requirement(function_package.durable_sdk()))
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


def _signed_tokens() -> dict[str, Any]:
    keys, tokens = [], []
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "customer-42", "role": "customer"}
    for algorithm, key in (
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
    ):
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key()))
        keys.append(jwk | {"kid": algorithm, "alg": algorithm})
        headers = {"kid": algorithm}
        tokens.append(jwt.encode(claims | {"exp": now + 300}, key, algorithm, headers=headers))
    return {"jwks": {"keys": keys}, "tokens": tokens, "issuer": ISSUER, "audience": AUDIENCE}


@pytest.fixture(scope="module")
def loaded() -> dict[str, Path]:
    """Module name -> file, of the modules a function loads from the installed libraries, on a
    stage of either tracer (the package is one for every stage)."""
    return _loaded("xray") | _loaded("opentelemetry")


def _loaded(tracer: str) -> dict[str, Path]:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(PROJECT),
        "AWS_LAMBDA_FUNCTION_NAME": "orders-unit",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(PROJECT),
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        "ORDERS_RESOURCE_PREFIX": "orders-unit",
        "ORDERS_TABLE_STREAM_ARN": "arn:aws:dynamodb:us-east-1:0:table/orders-unit/stream/x",
        "ORDERS_TRACER": tracer,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces",
    }
    completed = subprocess.run(
        [sys.executable, "-c", FUNCTION],
        cwd=PROJECT,
        env=env,
        input=json.dumps(_signed_tokens()),
        capture_output=True,
        text=True,
        check=True,
    )
    modules: dict[str, str | None] = json.loads(completed.stdout.splitlines()[-1])
    site_packages = Path(sysconfig.get_paths()["purelib"])
    return {
        name: Path(file).relative_to(site_packages)
        for name, file in modules.items()
        if file and Path(file).is_relative_to(site_packages)
    }


def _distributions(module_names: Iterable[str]) -> set[str]:
    """The installed libraries the modules come from."""
    installed = _installed()
    return {canonicalize_name(d) for name in module_names for d in installed[name.split(".")[0]]}


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def test_every_dependency_of_a_listed_library_is_listed_or_in_the_lambda_runtime() -> None:
    assert dependencies_left_out(listed()) == set()


def test_the_check_notices_a_dependency_left_out() -> None:
    without_protobuf = {n: r for n, r in listed().items() if n != "protobuf"}
    assert dependencies_left_out(without_protobuf) == {
        "googleapis-common-protos needs protobuf",
        "opentelemetry-proto needs protobuf",
    }


def test_every_listed_library_is_pinned_to_the_version_the_tests_run() -> None:
    for name, requirement in listed().items():
        assert str(requirement.specifier) == f"=={importlib.metadata.version(name)}", name


def test_every_library_a_function_loads_is_listed_or_in_the_lambda_runtime(
    loaded: dict[str, Path],
) -> None:
    libraries = _distributions(loaded) - {CHALICE}
    assert libraries - LAMBDA_RUNTIME <= set(listed())
    # (and the measure sees them: these are loaded for certain)
    assert {"aws-lambda-powertools", "aws-xray-sdk", "cryptography", "pyjwt"} <= libraries
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= libraries


def test_nothing_a_function_loads_is_left_out_of_the_package(loaded: dict[str, Path]) -> None:
    left_out = [Path(part) for part in function_package.UNUSED]
    assert {
        name: str(file)
        for name, file in loaded.items()
        if any(file.is_relative_to(part) for part in left_out)
    } == {}


def test_the_package_holds_the_libraries_functions_load_and_no_others(
    loaded: dict[str, Path],
) -> None:
    # GIVEN the functions' libraries as the deploy packages them
    vendor = function_package.vendor()
    # THEN each module or package in it is loaded by a function, and each loaded one is in it
    packaged = {
        entry.name.split(".")[0]
        for entry in vendor.iterdir()
        if entry.suffix != ".dist-info" and entry.name != "__pycache__"  # the compiled modules
    }
    elsewhere = LAMBDA_RUNTIME | {CHALICE}
    runtime = {name for name in loaded if _distributions([name]) & elsewhere}
    assert packaged == {name.split(".")[0] for name in loaded.keys() - runtime}
    # AND each listed library's metadata, its licence among it, is there at the listed version
    for name, requirement in listed().items():
        version = str(requirement.specifier).removeprefix("==")
        metadata = vendor / f"{name.replace('-', '_')}-{version}.dist-info"
        # (the durable SDK's wheel keeps its licence in its package, beside its code)
        beside_code = vendor / name.replace("-", "_")
        assert list(metadata.glob("**/LICENSE*")) + list(beside_code.glob("LICENSE*")), name


def hash_checked_bytecode(folder: Path) -> dict[str, bool]:
    """Each module's source file -> whether this Python's hash-checked bytecode of it is there."""
    compiled = {}
    for source in folder.rglob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        # PEP 552: bit 0 of the flags word marks hash-based bytecode, bit 1 "checked".
        flags = int.from_bytes(cached.read_bytes()[4:8], "little") if cached.is_file() else 0
        compiled[str(source.relative_to(folder))] = flags == 0b11
    return compiled


def test_every_module_of_the_package_is_compiled_and_checked_against_its_source(
    tmp_path: Path,
) -> None:
    # GIVEN the functions' libraries as the deploy packages them, and chalicelib compiled as
    # the deploy compiles it before packaging (here a copy, which the other tests do not load)
    chalicelib = shutil.copytree(
        PROJECT / "chalicelib", tmp_path / "chalicelib", ignore=shutil.ignore_patterns("*.pyc")
    )
    function_package.compile_bytecode(chalicelib)
    for folder in (function_package.vendor(), chalicelib):
        # THEN every module has bytecode a read-only /var/task can use as it is
        compiled = hash_checked_bytecode(folder)
        assert len(compiled) > 10
        assert [source for source, ok in compiled.items() if not ok] == []
