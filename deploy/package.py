"""The SAM path: ``chalice package --merge-template``, then ``aws cloudformation package``.

Rendering (``build``) needs no cloud. Packaging uploads the code to S3 under its
content hash, as ``aws cloudformation package`` does, so an unchanged build
is an unchanged template and CloudFormation has nothing to update.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import settings
from deploy import chalice_app, template
from deploy.stages import BUILD, Deployment, build_lock

SAM_TEMPLATE = "sam.json"
# What the app reads as its stream when packaged before its table exists; the merge template
# puts the stack's own stream in its place.
PENDING_STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/pending/stream/pending"


def merge_template(deployment: Deployment) -> dict[str, Any]:
    """The declared infrastructure plus what each Chalice function must use of it."""
    infrastructure = template.render(deployment)
    resources = infrastructure["Resources"] | template.function_overrides(deployment)
    return {"Resources": resources, "Outputs": infrastructure["Outputs"]}


def build(deployment: Deployment, env: dict[str, str]) -> Path:
    """``chalice package`` with the merge template; returns the folder with sam.json."""
    with one_build_at_a_time(deployment):
        return _build(deployment, env)


def one_build_at_a_time(deployment: Deployment) -> contextlib.AbstractContextManager[None]:
    """Chalice packages a deployment in its rendered project, zip cache included: another
    process's deploy or test building the same one at once would corrupt it. The second
    waits, then builds its own."""
    return build_lock(f"package-{deployment.prefix}")


def _build(deployment: Deployment, env: dict[str, str]) -> Path:
    chalice_app.render_project(deployment, None)  # the stack's outputs: the merge template's
    out = BUILD / f"sam-{deployment.prefix}"
    out.mkdir(parents=True, exist_ok=True)
    merge_file = BUILD / f"merge-{deployment.prefix}.json"
    merge_file.write_text(json.dumps(merge_template(deployment), indent=2) + "\n")
    # The stage's own values, read by the app when Chalice loads it, so that its queues and
    # batching window are this deployment's; the merge template replaces the stream.
    stage_values = template.function_environment(deployment).items()
    env = env | {k: v for k, v in stage_values if isinstance(v, str)}
    env[settings.ORDERS_STREAM] = PENDING_STREAM
    chalice_app.chalice("package", deployment, env, "--merge-template", str(merge_file), str(out))
    return out


def artifacts_bucket(account: str, deployment: Deployment) -> str:
    return f"{deployment.prefix}-artifacts-{account}"


def upload_stack_template(
    s3: Any, account: str, region: str, deployment: Deployment, rendered: dict[str, Any]
) -> str:
    """The chalice path's stack template in S3 (CloudFormation takes at most 51,200 bytes
    inline; the declaration is larger); its URL."""
    bucket = artifacts_bucket(account, deployment)
    _ensure_bucket(s3, bucket, region)
    stack = BUILD / f"stack-{deployment.prefix}.json"
    stack.write_text(json.dumps(rendered, indent=2) + "\n")
    return f"{s3.meta.endpoint_url}/{bucket}/{_upload(s3, bucket, 'templates', stack)}"


def package(s3: Any, account: str, region: str, deployment: Deployment, out: Path) -> str:
    """Upload the code and the template to S3; the template's URL."""
    bucket = artifacts_bucket(account, deployment)
    _ensure_bucket(s3, bucket, region)
    sam = json.loads((out / SAM_TEMPLATE).read_text())
    code_key = _upload(s3, bucket, "code", out / "deployment.zip")
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{bucket}/{code_key}"
    packaged = out / "packaged.json"
    packaged.write_text(json.dumps(sam, indent=2) + "\n")
    template_key = _upload(s3, bucket, "templates", packaged)
    return f"{s3.meta.endpoint_url}/{bucket}/{template_key}"


def empty_and_delete_bucket(s3: Any, account: str, deployment: Deployment) -> None:
    bucket = artifacts_bucket(account, deployment)
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for page in pages:
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("NoSuchBucket", "404"):
            raise


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        location = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **location)


def _upload(s3: Any, bucket: str, folder: str, path: Path) -> str:
    content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    key = f"{folder}/{content_hash}{path.suffix}"
    s3.upload_file(str(path), bucket, key)
    return key
