"""Roles LocalStack assumes for itself reused for a while
(localcloud_lambda_executor/assumed_role_cache.py), run in LocalStack's own venv against its
client factory; tests/localcloud/test_step_functions.py runs tasks that assume roles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json
from localstack.aws.connect import ClientFactory, connect_to
from localcloud_lambda_executor import assumed_role_cache
assumed = []
def assume(self, **kwargs):
    assumed.append(kwargs["role_arn"])
    return object()
ClientFactory.with_assumed_role = assume  # STS stubbed: count the roles assumed
assumed_role_cache.install()
assumed_role_cache.install()  # a second install wraps nothing twice
role, other = "arn:aws:iam::000000000000:role/a", "arn:aws:iam::000000000000:role/b"
first = connect_to.with_assumed_role(role_arn=role, region_name="us-east-1")
again = connect_to.with_assumed_role(role_arn=role, region_name="us-east-1")
elsewhere = connect_to.with_assumed_role(role_arn=role, region_name="eu-west-1")
second = connect_to.with_assumed_role(role_arn=other, region_name="us-east-1")
print(json.dumps({"assumed": assumed, "same": first is again,
                  "distinct": len({id(first), id(elsewhere), id(second)})}))
"""


def test_a_role_is_assumed_once_for_the_same_caller_and_again_for_another(
    local_cloud: Any,
) -> None:
    seen = run_in_localstack(SCRIPT)
    # Before: an AssumeRole per call (4); after: one per role, region and the rest
    role, other = "arn:aws:iam::000000000000:role/a", "arn:aws:iam::000000000000:role/b"
    assert seen["assumed"] == [role, role, other]
    assert seen["same"] is True
    assert seen["distinct"] == 3
