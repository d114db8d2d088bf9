"""What an AWS stage's functions are made of: the orders app and its libraries, and no test
instrument (the fault switch is the local cloud's: localdev/faults/).

The package is really built, as both deploy paths build it (``chalice package``; no cloud
needed), into a temporary folder, and its zip is listed.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest

from chalicelib import settings
from deploy import chalice_app, package
from deploy.stages import Deployment, DeployPath, load_stage

AWS_STAGE = Deployment(load_stage("dev"), DeployPath.SAM)
# The fault switch's trace: a file named after faults, or the word in the app's own code
# (``FaultInjector``, ``OrdersWithFaults``, ``fault switch``; not ``default``).
FAULT = re.compile(r"(?<!de)fault", re.IGNORECASE)


def fault_code_in(built: zipfile.ZipFile) -> list[str]:
    """Files of the package named after faults, and files of the app's own code naming them."""
    found = []
    for name in built.namelist():
        own = name == "app.py" or (name.startswith("chalicelib/") and name.endswith(".py"))
        if FAULT.search(name) or (own and FAULT.search(built.read(name).decode(errors="replace"))):
            found.append(name)
    return found


@pytest.fixture(scope="module")
def aws_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aws-package") / "out"
    # What the app reads when Chalice loads it (package.build gives the same).
    env = dict(os.environ) | {
        "AWS_DEFAULT_REGION": "us-east-1",
        settings.ORDERS_STREAM: package.PENDING_STREAM,
        settings.RESOURCE_PREFIX: AWS_STAGE.prefix,
    }
    with package.one_build_at_a_time(AWS_STAGE):
        chalice_app.render_project(AWS_STAGE, None)  # as package.build does: no stack yet
        chalice_app.chalice("package", AWS_STAGE, env, str(out))
    return out / "deployment.zip"


def test_an_aws_stages_package_holds_the_app_and_no_fault_code(aws_package: Path) -> None:
    with zipfile.ZipFile(aws_package) as built:
        assert {"app.py", "chalicelib/bootstrap.py", "chalicelib/ports.py"} <= set(built.namelist())
        assert fault_code_in(built) == []


def test_the_listing_finds_fault_code_by_its_name_or_in_the_apps_own_code() -> None:
    # GIVEN a package as they were built while the switch lived in chalicelib/
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as built:
        built.writestr("app.py", "from chalicelib.application import create_app\n")
        built.writestr("chalicelib/adapters/ssm_fault_settings.py", "class SsmSettings: ...\n")
        built.writestr("chalicelib/bootstrap.py", "orders = OrdersWithFaults(orders)\n")
        built.writestr("chalicelib/__pycache__/faults.cpython-313.pyc", b"\xf3\r\r\n")
        built.writestr("chalicelib/ports.py", "deadlines = Deadlines()  # by default\n")
        built.writestr("aws_xray_sdk/core/models/segment.py", "self.fault = True\n")
    # WHEN it is listed, THEN the switch's files are found, and a library's own word is not
    with zipfile.ZipFile(data) as built:
        assert fault_code_in(built) == [
            "chalicelib/adapters/ssm_fault_settings.py",
            "chalicelib/bootstrap.py",
            "chalicelib/__pycache__/faults.cpython-313.pyc",
        ]
