"""Test support: a ready local cloud endpoint and clients bound to it.

`ensure_local_cloud()` uses, in this order: an endpoint given by LOCALSTACK_ENDPOINT or
AWS_ENDPOINT_URL; a LocalStack already answering on 127.0.0.1:LOCALCLOUD_PORT (Docker or a
previous `run start`); otherwise it runs `bash localcloud/run start`. Only in that last case
does `LocalCloud.started_here` say True, so a test session stops only what it started.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from localcloud.paths import PACKAGE_DIR, REGION, configured_port
from localcloud.server import external_endpoint, is_healthy, local_url

TEST_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
ACCOUNT_ID = "000000000000"
RUN_SCRIPT = PACKAGE_DIR / "run"


@dataclass(frozen=True)
class LocalCloud:
    """A reachable LocalStack endpoint, and whether this process started it."""

    endpoint: str
    region: str = REGION
    started_here: bool = False
    port: int | None = None

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A boto3 client for `service_name` with test credentials, bound to the endpoint."""
        import boto3  # imported here: `localcloud` itself needs only the standard library

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            **TEST_CREDENTIALS,
        }
        return boto3.client(service_name, **{**options, **kwargs})

    def localstack_session(self) -> Any:
        """A `localstack_client` session bound to the endpoint (same clients, other API)."""
        from localstack_client.session import Session  # type: ignore[import-untyped]

        return Session(
            aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
            region_name=self.region,
            localstack_host=urlparse(self.endpoint).netloc,
        )

    def environment(self) -> dict[str, str]:
        """Variables that point AWS SDKs and CLIs (chalice, aws) at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": TEST_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIALS["aws_secret_access_key"],
        }

    def is_local_instance(self) -> bool:
        """True if this is the embedded instance on this host (its processes are ours to see)."""
        return self.port is not None and self.endpoint == local_url(self.port)


def run_command(command: str, port: int | None = None, timeout: float = 900) -> str:
    """Runs `bash localcloud/run <command>`; returns its stdout; raises with its stderr."""
    env = dict(os.environ)
    if port is not None:
        env["LOCALCLOUD_PORT"] = str(port)
    completed = subprocess.run(
        ["bash", str(RUN_SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"`localcloud/run {command}` failed ({completed.returncode}):\n{completed.stderr}"
        )
    return completed.stdout


def ensure_local_cloud(port: int | None = None) -> LocalCloud:
    """A ready endpoint, starting the embedded cloud only when none is configured or running."""
    if url := external_endpoint():
        return LocalCloud(endpoint=url)
    port = port if port is not None else configured_port()
    url = local_url(port)
    if is_healthy(url):
        return LocalCloud(endpoint=url, port=port)
    stdout = run_command("start", port=port)
    endpoint = stdout.strip().splitlines()[-1]
    return LocalCloud(endpoint=endpoint, started_here=True, port=port)


def wait_for[T](
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Polls `probe` until it returns neither None nor False; raises after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout:.1f} s")
        time.sleep(interval)
