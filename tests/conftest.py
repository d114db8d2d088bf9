"""Session fixtures for tests that need the embedded local cloud (LocalStack on the host).

Nothing here starts anything until a test asks for `local_cloud`: unit tests stay offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.testing import LocalCloud, ensure_local_cloud, stop_local_cloud


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[LocalCloud]:
    """A ready endpoint: LOCALSTACK_ENDPOINT/AWS_ENDPOINT_URL, a running LocalStack, or one
    started here (and then stopped at the end of the session unless LOCALCLOUD_KEEP=1)."""
    cloud = ensure_local_cloud()
    yield cloud
    stop_local_cloud(cloud)


@pytest.fixture(scope="session")
def localstack_session(local_cloud: LocalCloud) -> Any:
    """A `localstack_client` session bound to the local cloud."""
    return local_cloud.localstack_session()
