"""A role LocalStack assumes for itself assumed once every few minutes, not once per call.

LocalStack 2026.3 makes an STS AssumeRole request to itself, and then a new boto3 client with
the credentials it got, each time one of its services acts with a role
(``localstack/aws/connect.py``, ``ClientFactory.with_assumed_role``): Step Functions does so for
every task of every execution (``services/stepfunctions/asl/utils/boto_client.py``). Counted
from the local cloud's log during the flows' benchmark, about four AssumeRole requests per
orchestrated order, each followed by the construction of a client (~2 % of LocalStack's sampled
CPU).

Here the client factory made for a role (the same role, principal, session name, region,
endpoint and client configuration) is reused for ``LOCALCLOUD_ASSUMED_ROLE_SEC`` (default 600 s,
well inside the hour AssumeRole's credentials last), and with it the clients LocalStack caches
per set of credentials. The role is still assumed through STS; the local cloud does not enforce
IAM, so what the credentials allow is the same either way.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

REUSE_VARIABLE = "LOCALCLOUD_ASSUMED_ROLE_SEC"
DEFAULT_REUSE_SECONDS = 600.0
MAX_FACTORIES = 256
_CACHED = "_localcloud_cached"


def install() -> None:
    """Wrap ``ClientFactory.with_assumed_role`` with a cache of the factories it returns."""
    from localstack.aws.connect import ClientFactory

    assume = ClientFactory.with_assumed_role
    if getattr(assume, _CACHED, False):
        return
    reuse_seconds = float(os.environ.get(REUSE_VARIABLE) or DEFAULT_REUSE_SECONDS)
    # key -> (reusable until, factory, the configuration it was made with: kept alive, so that
    # its id is not reused for another one while the entry lasts)
    factories: dict[tuple[Any, ...], tuple[float, Any, Any]] = {}
    lock = threading.Lock()

    def with_assumed_role(self: Any, **kwargs: Any) -> Any:
        # Client configurations are compared by identity: LocalStack's callers pass a module's
        # constant, and a new one each call simply misses.
        key = (
            id(self),
            *sorted((name, id(v) if name == "config" else v) for name, v in kwargs.items()),
        )
        now = time.monotonic()
        with lock:
            if (cached := factories.get(key)) is not None and now < cached[0]:
                return cached[1]
        factory = assume(self, **kwargs)
        with lock:
            if len(factories) >= MAX_FACTORIES:
                factories.clear()
            factories[key] = (now + reuse_seconds, factory, kwargs.get("config"))
        return factory

    setattr(with_assumed_role, _CACHED, True)
    ClientFactory.with_assumed_role = with_assumed_role  # type: ignore[method-assign]
