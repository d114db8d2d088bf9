"""Queue and topic policies refuse every request that does not come over TLS.

checkov's built-in checks look for ``aws:SecureTransport`` in S3 bucket policies only; this
one holds SQS queue policies and SNS topic policies to the same rule.
"""

from __future__ import annotations

from typing import Any

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

ID = "CKV_ORDERS_1"


def denies_without_tls(statement: dict[str, Any]) -> bool:
    """A Deny for everyone whose condition is ``aws:SecureTransport`` false."""
    condition = statement.get("Condition", {}).get("Bool", {})
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and str(condition.get("aws:SecureTransport")).lower() == "false"
    )


class DenyWithoutTls(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure the queue or topic policy denies requests without TLS",
            id=ID,
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        document = conf.get("Properties", {}).get("PolicyDocument", {})
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        if any(denies_without_tls(statement) for statement in statements):
            return CheckResult.PASSED
        return CheckResult.FAILED


check = DenyWithoutTls()
