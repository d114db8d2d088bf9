"""SQS batch handler with partial batch responses: bodies starting with "fail" are reported."""

import json
import os

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        sqs.send_message(
            QueueUrl=os.environ["RESULT_QUEUE_URL"],
            MessageBody=json.dumps({"body": body, "messageId": record["messageId"]}),
        )
        if body.startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
