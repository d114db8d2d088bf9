"""Unit tests of what keeps load from starving the workflow: the stages' API throttling and the
functions' reserved concurrency (chalicelib/functions.py). No cloud needed; the rendered
templates are checked in tests/integration/test_sam_template.py, the deployed stage in
tests/e2e/test_flood.py."""

from __future__ import annotations

import json

import pytest

from chalicelib.functions import FUNCTIONS, OrdersStream, StateMachineTask, function
from deploy.stages import STAGES_FILE, ApiThrottling, load_stage

# Lambda's default concurrency per account and region (also the local cloud's), and what it
# keeps unreserved whatever functions reserve (PutFunctionConcurrency refuses to go below).
ACCOUNT_CONCURRENCY = 1000
ALWAYS_UNRESERVED = 100
# The local cloud holds both local stages, each deployed both ways, in one account.
LOCAL_DEPLOYMENTS = 4
# docs/scaling.md's assumption for a function's run.
RUN_SECONDS = 0.1
STAGES = sorted(json.loads(STAGES_FILE.read_text()))


def reserved(local: bool) -> int:
    return sum(f.reserved.executions(local) for f in FUNCTIONS if f.reserved is not None)


def test_the_workflow_the_relay_the_consumers_and_the_sweeper_have_concurrency_of_their_own() -> (
    None
):
    unreserved = {f.name for f in FUNCTIONS if f.reserved is None}
    # Only the API takes from the shared pool; its stage's throttling bounds what it takes.
    assert unreserved == {"api_handler"}
    for declared in FUNCTIONS:
        if isinstance(declared.trigger, StateMachineTask | OrdersStream):
            assert declared.reserved is not None and declared.reserved.local >= 1
    assert function("sweeper").reserved is not None
    assert function("sweeper").reserved.aws == 1  # one sweep at a time


def test_an_aws_stage_leaves_its_api_the_concurrency_its_throttling_lets_in() -> None:
    unreserved = ACCOUNT_CONCURRENCY - reserved(local=False)
    assert unreserved >= ALWAYS_UNRESERVED
    for name in STAGES:
        stage = load_stage(name)
        if not stage.is_local:
            # at its steady rate the API runs rate x run time functions at once
            assert stage.api_throttling.rate_per_second * RUN_SECONDS <= unreserved, name


def test_every_local_deployment_fits_in_the_local_clouds_one_account() -> None:
    assert LOCAL_DEPLOYMENTS * reserved(local=True) <= ACCOUNT_CONCURRENCY - ALWAYS_UNRESERVED


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_throttles_its_api_below_its_burst(stage: str) -> None:
    throttling = load_stage(stage).api_throttling
    assert 1 <= throttling.rate_per_second <= throttling.burst


def test_a_stage_without_api_throttling_is_refused_with_the_reason() -> None:
    with pytest.raises(SystemExit, match="api_throttling"):
        ApiThrottling.parse("somewhere", {"target": "aws"})
    with pytest.raises(SystemExit, match="api_throttling.burst"):
        ApiThrottling.parse("somewhere", {"api_throttling": {"rate_per_second": 10}})
    with pytest.raises(SystemExit, match="positive"):
        ApiThrottling.parse("somewhere", {"api_throttling": {"rate_per_second": 0, "burst": 1}})
