"""End to end: a flood of unauthenticated requests while orders flow in both flows.

What the local cloud can show of "load cannot starve the workflow": it runs every request's
token check in the API function, as AWS does, and it enforces reserved concurrency, but not API
Gateway's throttling (its stage keeps the setting without applying it). So these tests prove
that orders still end under a flood, and that the deployed stage and functions carry the
stage's throttling and the reservations; what the rendered templates declare is checked in
tests/integration/test_sam_template.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.functions import FUNCTIONS
from deploy import api_throttling, chalice_app
from deploy.stages import Deployment, DeployPath, load_stage
from localdev.orders_api import Answer, OrdersApi
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e

FLOOD_REQUESTS = 200
FLOOD_CLIENTS = 8
ORDERS_PER_FLOW = 1
CHALICE_PATH = Deployment(load_stage("local"), DeployPath.CHALICE)


def unauthenticated(api: OrdersApi, n: int) -> Answer:
    """Alternately a placement and a read with no token: each runs the API function's check."""
    if n % 2:
        return api.request("GET", "/orders")
    return api.request("POST", "/orders", an_order("choreography"))


def test_a_flood_of_unauthenticated_requests_does_not_keep_any_order_from_ending(
    api: OrdersApi, chalice_deployment: dict[str, Any]
) -> None:
    # GIVEN orders placed in both flows
    flows = ["choreography", "orchestration"] * ORDERS_PER_FLOW
    placed = [api.place(an_order(flow)) for flow in flows]
    # WHEN a few hundred requests with no token arrive at once while their restaurant answers
    with ThreadPoolExecutor(FLOOD_CLIENTS) as flood, ThreadPoolExecutor(len(placed)) as played:
        answers = [flood.submit(unauthenticated, api, n) for n in range(FLOOD_REQUESTS)]
        finished = [played.submit(api.finish, order_id) for order_id in placed]
        statuses = [answer.result().status for answer in answers]
        ended = {order["order_id"]: order["status"] for order in (f.result() for f in finished)}
    # THEN every order ended, delivered
    assert ended == dict.fromkeys(placed, "COMPLETED")
    # AND the flood was refused at the door: 401 (429 where API Gateway throttles), never a 5xx
    assert set(statuses) <= {401, 429}, sorted(set(statuses))


def test_the_deployed_api_stage_and_functions_carry_the_stages_limits(
    local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    # GIVEN the chalice path's deployment (Chalice has no throttling setting: set after deploy)
    app = chalice_app.deployed(CHALICE_PATH)
    apigateway = local_cloud.client("apigateway")
    # THEN its API stage reads back the stage's throttling
    deployed = api_throttling.deployed(apigateway, app.rest_api_id, chalice_app.API_STAGE)
    assert deployed == CHALICE_PATH.stage.api_throttling
    # AND every function but the API's has its reserved concurrency
    lambda_client = local_cloud.client("lambda")
    for function in FUNCTIONS:
        reserved = lambda_client.get_function_concurrency(
            FunctionName=app.function_arns[function.name]
        ).get("ReservedConcurrentExecutions")
        expected = None if function.reserved is None else function.reserved.executions(True)
        assert reserved == expected, function.name
