"""End to end: a second stage beside the first, updated after a handler change, torn down.

Runs on a copy of the project's tracked files (with its own ``build/``), so this checkout's
deployment records are left as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from localdev import dev_issuer
from localdev.orders_api import OrdersApi
from tests.e2e.conftest import PROJECT, an_order

pytestmark = pytest.mark.e2e
STAGE = "local-b"
PREFIX = f"orders-{STAGE}"


def project_copy(destination: Path) -> Path:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = PROJECT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # The same development issuer, so the tests' tokens are good for both stages (another
    # checkout would make its own key, and tokens with tools.token there).
    dev_issuer.signing_key()  # made now if this checkout has none yet
    shutil.copytree(
        dev_issuer.KEY_FILE.parent, destination / dev_issuer.KEY_FILE.relative_to(PROJECT).parent
    )
    return destination


def run_deploy(project: Path, cloud: Any, command: str) -> tuple[dict[str, Any], str]:
    """The deploy's outputs (empty after ``down``) and its progress lines."""
    completed = subprocess.run(
        [sys.executable, "-m", "deploy", command, "--stage", STAGE],
        cwd=project,
        env=os.environ | cloud.environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outputs = project / "build" / f"outputs-{PREFIX}.json"
    result = dict(json.loads(outputs.read_text())) if outputs.exists() else {}
    return result, completed.stderr


def leftovers(cloud: Any) -> list[str]:
    """Everything in the local cloud whose name says it belongs to the stage."""
    found = [
        f["FunctionName"]
        for page in cloud.client("lambda").get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    found += [
        url.rsplit("/", 1)[1] for url in cloud.client("sqs").list_queues().get("QueueUrls", [])
    ]
    found += [t["TopicArn"] for t in cloud.client("sns").list_topics()["Topics"]]
    found += cloud.client("dynamodb").list_tables()["TableNames"]
    found += [
        m["name"] for m in cloud.client("stepfunctions").list_state_machines()["stateMachines"]
    ]
    found += [r["RoleName"] for r in cloud.client("iam").list_roles()["Roles"]]
    found += [
        s["StackName"]
        for s in cloud.client("cloudformation").describe_stacks()["Stacks"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    return sorted(name for name in found if PREFIX in name)


@pytest.mark.long_running(seconds=70)
def test_a_second_stage_is_an_independent_system_that_updates_and_leaves_nothing_behind(
    local_cloud: Any, api: OrdersApi, tmp_path: Path
) -> None:
    project = project_copy(tmp_path / "project")
    # GIVEN stage local-b deployed beside local
    second = OrdersApi(run_deploy(project, local_cloud, "up")[0]["api_url"])
    try:
        # WHEN an order goes through local-b
        order_id = second.place(an_order("choreography"))
        second.wait_for(order_id, "RESTAURANT_NOTIFIED")
        # THEN local does not know it: separate tables, queues and functions
        customer = second.parties[order_id][0]
        assert api.request("GET", f"/orders/{order_id}", as_party=customer).status == 404

        # WHEN a handler changes and the stage is deployed again
        marker = uuid.uuid4().hex
        # (a route more on the API's routes: the API's function serves create_api, and the
        # whole app that Chalice deploys starts from it)
        with (project / "chalicelib" / "application.py").open("a") as application:
            application.write(
                "\n\n_create_api = create_api\n\n\ndef create_api() -> Chalice:\n"
                "    app = _create_api()\n\n"
                "    @app.route('/deploy-marker')\n"
                "    def deploy_marker() -> dict[str, str]:\n"
                f"        return {{'marker': '{marker}'}}\n\n"
                "    return app\n"
            )
        second = OrdersApi(run_deploy(project, local_cloud, "up")[0]["api_url"])
        # THEN the new code answers, and the stage still carries orders
        assert second.request("GET", "/deploy-marker").body == {"marker": marker}
        order_id = second.place(an_order("orchestration"))
        second.wait_for(order_id, "RESTAURANT_NOTIFIED")

        # WHEN it is deployed again without a change THEN nothing is redeployed
        assert "chalice deploy: nothing changed" in run_deploy(project, local_cloud, "up")[1]
    finally:
        run_deploy(project, local_cloud, "down")
    # THEN nothing of the stage is left, and local still serves
    assert leftovers(local_cloud) == []
    assert api.place(an_order("choreography"))
