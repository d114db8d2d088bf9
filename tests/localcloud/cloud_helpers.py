"""Helpers for the local cloud proof tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud.paths import install_layout
from localcloud.testing import ACCOUNT_ID, wait_for

FUNCTIONS_DIR = Path(__file__).parent / "functions"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/localcloud-test-role"
# Chalice builds functions for the Python that runs it (the project venv's): test the same.
PYTHON_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def run_in_localstack(script: str, **environment: str) -> Any:
    """Runs `script` on LocalStack's own interpreter (its venv, with the executor plugin);
    returns the JSON its last line prints."""
    ran = subprocess.run(
        [str(install_layout().localstack_python), "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        timeout=120,  # a guard against a hang, not a measure of speed
    )
    return json.loads(ran.stdout.strip().splitlines()[-1])


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def zip_function(source_name: str) -> bytes:
    """A deployment package holding tests/localcloud/functions/<source_name>.py as handler.py."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(FUNCTIONS_DIR / f"{source_name}.py", "handler.py")
    return buffer.getvalue()


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    arn: str


def wait_until_active(lambda_client: Any, name: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        configuration = lambda_client.get_function(FunctionName=name)["Configuration"]
        return None if configuration["State"] == "Pending" else configuration

    return wait_for(settled, timeout=60, message=f"function {name} leaving Pending")


def wait_until_mapping_enabled(lambda_client: Any, uuid: str) -> None:
    wait_for(
        lambda: lambda_client.get_event_source_mapping(UUID=uuid)["State"] == "Enabled",
        timeout=30,
        message="event source mapping enabled",
    )


def queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


def receive_json(
    sqs: Any, url: str, until: Callable[[list[Any]], bool], timeout: float = 30
) -> list[Any]:
    """Receives (and deletes) JSON messages from `url` until `until(all so far)` holds."""
    received: list[Any] = []

    def poll() -> list[Any] | None:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return received if until(received) else None

    return wait_for(poll, timeout=timeout, interval=0, message=f"expected messages on {url}")


def invoke_json(
    lambda_client: Any, name: str, event: Any, **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    """Invokes synchronously; returns the raw response and the decoded payload."""
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")
