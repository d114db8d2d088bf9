"""LocalStack's DynamoDB, backed offline by DynamoDB Local, through its API and CloudFormation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.testing import LocalCloud, wait_for
from tests.localcloud.cloud_helpers import unique_name

pytestmark = pytest.mark.localcloud

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]


@pytest.fixture
def table(local_cloud: LocalCloud) -> Iterator[str]:
    dynamodb = local_cloud.client("dynamodb")
    name = unique_name("lc-orders")
    dynamodb.create_table(
        TableName=name,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTES,
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    yield name
    dynamodb.delete_table(TableName=name)


def put_if_absent(dynamodb: Any, table: str, pk: str, sk: str, status: str) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": status}},
        ConditionExpression="attribute_not_exists(pk)",
    )


def test_conditional_put_and_query(local_cloud: LocalCloud, table: str) -> None:
    dynamodb = local_cloud.client("dynamodb")
    put_if_absent(dynamodb, table, "ORDER#1", "EVENT#001", "PLACED")
    put_if_absent(dynamodb, table, "ORDER#1", "EVENT#002", "ACCEPTED")
    put_if_absent(dynamodb, table, "ORDER#2", "EVENT#001", "PLACED")

    # a second write of the same key is refused by its condition
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        put_if_absent(dynamodb, table, "ORDER#1", "EVENT#001", "OVERWRITTEN")

    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "ORDER#1"}},
    )["Items"]
    assert [(item["sk"]["S"], item["status"]["S"]) for item in items] == [
        ("EVENT#001", "PLACED"),
        ("EVENT#002", "ACCEPTED"),
    ]


def test_table_created_by_cloudformation_works(local_cloud: LocalCloud) -> None:
    cloudformation = local_cloud.client("cloudformation")
    dynamodb = local_cloud.client("dynamodb")
    stack = unique_name("lc-stack")
    template = {
        "Resources": {
            "Orders": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": KEY_SCHEMA,
                    "AttributeDefinitions": ATTRIBUTES,
                    "BillingMode": "PAY_PER_REQUEST",
                },
            }
        },
        "Outputs": {"TableName": {"Value": {"Ref": "Orders"}}},
    }
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    try:

        def created() -> dict[str, Any] | None:
            described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
            return None if described["StackStatus"].endswith("IN_PROGRESS") else described

        described = wait_for(created, timeout=120, interval=0.5, message="stack created")
        assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
        table = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}["TableName"]

        put_if_absent(dynamodb, table, "ORDER#9", "EVENT#001", "PLACED")
        item = dynamodb.get_item(
            TableName=table, Key={"pk": {"S": "ORDER#9"}, "sk": {"S": "EVENT#001"}}
        )["Item"]
        assert item["status"]["S"] == "PLACED"
    finally:
        cloudformation.delete_stack(StackName=stack)
