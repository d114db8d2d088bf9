"""Returns what it saw: the event, the Lambda environment and the context."""

import json
import os

import boto3


def handler(event, context):
    print("echo received", json.dumps(event))
    return {
        "event": event,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "boto3_version": boto3.__version__,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
        "code_dir": os.path.dirname(os.path.abspath(__file__)),
    }
