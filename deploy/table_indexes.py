"""Indexes the local cloud's CloudFormation leaves out when it updates a table.

LocalStack creates a table's global secondary indexes with the table, but a stack update that
adds one (the ``waiting`` index, on a deployment made before it existed) leaves the table
without it. AWS's CloudFormation adds it; here the deploy does, so that an existing local
deployment keeps working after an upgrade.
"""

from __future__ import annotations

import time
from typing import Any

from deploy import template

INDEX_WAIT_SECONDS = 60


def add_missing_indexes(
    dynamodb: Any, table: str, indexes: dict[str, tuple[str, str]]
) -> list[str]:
    """Create each declared index the table lacks, one at a time as DynamoDB requires; their
    names."""
    described = dynamodb.describe_table(TableName=table)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    missing = {name: keys for name, keys in indexes.items() if name not in present}
    for name, (hash_key, range_key) in missing.items():
        (declaration,) = template.global_indexes({name: (hash_key, range_key)})
        dynamodb.update_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": hash_key, "AttributeType": "S"},
                {"AttributeName": range_key, "AttributeType": "S"},
            ],
            GlobalSecondaryIndexUpdates=[{"Create": declaration}],
        )
        _wait_active(dynamodb, table, name)
    return sorted(missing)


def _wait_active(dynamodb: Any, table: str, index: str) -> None:
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while time.monotonic() < deadline:
        described = dynamodb.describe_table(TableName=table)["Table"]
        statuses = {
            i["IndexName"]: i.get("IndexStatus")
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        if statuses.get(index) == "ACTIVE":
            return
        time.sleep(0.5)
    raise SystemExit(f"index {index} of table {table} is not active after {INDEX_WAIT_SECONDS} s")
