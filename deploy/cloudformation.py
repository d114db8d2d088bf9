"""``aws cloudformation deploy`` and ``delete-stack``, with CloudFormation's own waiters."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError, WaiterError

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Polls for up to 15 minutes: every second in AWS (its default is 30 s), four times a second in
# the local cloud, where a change set is ready and a small stack done in well under a second.
AWS_WAIT = {"Delay": 1, "MaxAttempts": 900}
LOCAL_WAIT = {"Delay": 0.25, "MaxAttempts": 3600}


class StackError(RuntimeError):
    """A stack did not reach the state asked for; the message has the failed resources."""


def deploy_stack(
    cloudformation: Any, name: str, template: dict[str, Any] | None, template_url: str | None = None
) -> dict[str, str]:
    """Create or update the stack through a change set; its outputs. No changes: no update."""
    if stack_status(cloudformation, name) == "ROLLBACK_COMPLETE":
        # A stack whose creation failed can only be deleted; start afresh.
        delete_stack(cloudformation, name)
    exists = stack_status(cloudformation, name) not in (None, "REVIEW_IN_PROGRESS")
    change_set = f"deploy-{int(time.time() * 1000)}"
    body = {"TemplateURL": template_url} if template_url else {"TemplateBody": json.dumps(template)}
    cloudformation.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType="UPDATE" if exists else "CREATE",
        Capabilities=CAPABILITIES,
        **body,
    )
    try:
        cloudformation.get_waiter("change_set_create_complete").wait(
            StackName=name, ChangeSetName=change_set, WaiterConfig=_wait_config(cloudformation)
        )
    except WaiterError:
        described = cloudformation.describe_change_set(StackName=name, ChangeSetName=change_set)
        reason = described.get("StatusReason", "")
        if "didn't contain changes" not in reason and "No updates" not in reason:
            raise StackError(f"change set for {name} failed: {reason}") from None
        cloudformation.delete_change_set(StackName=name, ChangeSetName=change_set)
        return outputs(cloudformation, name)
    cloudformation.execute_change_set(StackName=name, ChangeSetName=change_set)
    waiter = "stack_update_complete" if exists else "stack_create_complete"
    _wait(cloudformation, waiter, name)
    return outputs(cloudformation, name)


def delete_stack(cloudformation: Any, name: str) -> bool:
    """Delete the stack and wait until it is gone; False if there was none."""
    if stack_status(cloudformation, name) is None:
        return False
    cloudformation.delete_stack(StackName=name)
    try:
        _wait(cloudformation, "stack_delete_complete", name)
    except StackError:
        # Resources that were never created (a failed creation) can fail to delete; the
        # second attempt skips them, as the console's "retain and delete" does.
        if stack_status(cloudformation, name) != "DELETE_FAILED":
            raise
        cloudformation.delete_stack(
            StackName=name, RetainResources=_failed_ids(cloudformation, name)
        )
        _wait(cloudformation, "stack_delete_complete", name)
    return True


def outputs(cloudformation: Any, name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def stack_status(cloudformation: Any, name: str) -> str | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    status = str(stacks[0]["StackStatus"]) if stacks else None
    return None if status == "DELETE_COMPLETE" else status


def _wait(cloudformation: Any, waiter: str, name: str) -> None:
    try:
        cloudformation.get_waiter(waiter).wait(
            StackName=name, WaiterConfig=_wait_config(cloudformation)
        )
    except WaiterError as error:
        raise StackError(f"stack {name}: {error}; {_failures(cloudformation, name)}") from None


def _wait_config(cloudformation: Any) -> dict[str, float]:
    in_aws = str(cloudformation.meta.endpoint_url).endswith(".amazonaws.com")
    return AWS_WAIT if in_aws else LOCAL_WAIT


def _failed_ids(cloudformation: Any, name: str) -> list[str]:
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    return [r["LogicalResourceId"] for r in resources if r["ResourceStatus"] == "DELETE_FAILED"]


def _failures(cloudformation: Any, name: str) -> str:
    try:
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return "no events"
    failed = [
        f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}"
        for event in events
        if event["ResourceStatus"].endswith("_FAILED")
    ]
    return "; ".join(failed) or "no failed resources reported"
