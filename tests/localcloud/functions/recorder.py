"""Forwards every event it receives to the SQS queue in RESULT_QUEUE_URL (boto3 -> LocalStack)."""

import json
import os

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    sqs.send_message(QueueUrl=os.environ["RESULT_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"recorded": True}
