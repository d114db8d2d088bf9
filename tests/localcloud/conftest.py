"""Fixtures for the local cloud proof tests: deploy test functions, make queues."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcloud.testing import LocalCloud
from tests.localcloud.cloud_helpers import (
    PYTHON_RUNTIME,
    ROLE_ARN,
    DeployedFunction,
    unique_name,
    wait_until_active,
    zip_function,
)


@pytest.fixture(scope="session")
def lambda_client(local_cloud: LocalCloud) -> Any:
    return local_cloud.client("lambda")


@pytest.fixture(scope="session")
def sqs(local_cloud: LocalCloud) -> Any:
    return local_cloud.client("sqs")


@pytest.fixture
def deploy_function(lambda_client: Any) -> Iterator[Callable[..., DeployedFunction]]:
    """Creates functions from tests/localcloud/functions/*.py; deletes them afterwards."""
    created: list[str] = []

    def deploy(
        source_name: str,
        timeout: int = 10,
        environment: dict[str, str] | None = None,
        runtime: str = PYTHON_RUNTIME,
        wait: bool = True,
    ) -> DeployedFunction:
        name = unique_name(f"lc-{source_name.replace('_', '-')}")
        response = lambda_client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE_ARN,
            Handler="handler.handler",
            Code={"ZipFile": zip_function(source_name)},
            Timeout=timeout,
            Environment={"Variables": environment or {}},
        )
        created.append(name)
        if wait:
            configuration = wait_until_active(lambda_client, name)
            assert configuration["State"] == "Active", configuration.get("StateReason")
        return DeployedFunction(name=name, arn=response["FunctionArn"])

    yield deploy
    for name in created:
        # The test may have deleted it itself.
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


@pytest.fixture
def make_queue(sqs: Any) -> Iterator[Callable[..., str]]:
    """Creates SQS queues (returns their URLs); deletes them afterwards."""
    urls: list[str] = []

    def make(prefix: str = "lc-queue", **attributes: str) -> str:
        url: str = sqs.create_queue(QueueName=unique_name(prefix), Attributes=attributes)[
            "QueueUrl"
        ]
        urls.append(url)
        return url

    yield make
    for url in urls:
        sqs.delete_queue(QueueUrl=url)
