"""LocalStack's calls to itself served in memory (``IN_MEMORY_CLIENT``, localcloud/server.py).

The event source mapping, SNS, Step Functions and API Gateway tests in this folder and the
end-to-end tests run every kind of such call this way; this test proves
effect: the setting is in effect."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from localcloud.server import external_endpoint

pytestmark = pytest.mark.localcloud


def test_the_local_cloud_serves_its_calls_to_itself_in_memory(local_cloud: Any) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's settings are not ours")
    # WHEN the running local cloud is asked for its configuration
    with urllib.request.urlopen(f"{local_cloud.endpoint}/_localstack/config", timeout=10) as got:
        config = json.loads(got.read())
    # THEN its services call each other through the gateway in memory, not over HTTP
    assert config["IN_MEMORY_CLIENT"] is True
